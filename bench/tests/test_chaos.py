"""The chaos section's schedule and proxy (no cluster)."""
import socket
import threading
import unittest

import _path  # noqa: F401

from benchlib import chaos


class ScheduleTest(unittest.TestCase):
    def test_the_schedule_is_the_seeds_alone(self):
        self.assertEqual(chaos.schedule(19, 300), chaos.schedule(19, 300))
        self.assertNotEqual(chaos.schedule(19, 300), chaos.schedule(20, 300))

    def test_each_fault_comes_about_once_per_period(self):
        plan = chaos.schedule(7, 600)
        for kind, (period, jitter) in chaos.FAULTS.items():
            times = [t for t, k in plan if k == kind]
            self.assertEqual(len(times), int((600 - 1e-9) // period))
            for i, t in enumerate(times, start=1):
                self.assertLessEqual(abs(t - i * period), jitter)


class PhaseTimesTest(unittest.TestCase):
    def test_each_phase_has_its_count_median_p90_and_max_from_every_report(self):
        reports = [{"phases": [{"name": "create", "duration_ms": 100},
                               {"name": "wait-ready", "duration_ms": 1000 * s}]} for s in range(1, 11)]
        reports.append({"phases": []})  # a report with no phase counts for none
        t = chaos.phase_times(reports)
        self.assertEqual(t["create"], {"n": 10, "median_s": 0.1, "p90_s": 0.1, "max_s": 0.1})
        self.assertEqual(t["wait-ready"], {"n": 10, "median_s": 5.5, "p90_s": 9.0, "max_s": 10.0})


class ProxyTest(unittest.TestCase):
    def test_a_cut_closes_open_connections_and_new_ones_still_pass(self):
        upstream = socket.socket()
        upstream.bind(("127.0.0.1", 0))
        upstream.listen(8)

        def echo():
            while True:
                try:
                    c, _ = upstream.accept()
                except OSError:
                    return
                threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(100), b"")],
                                 daemon=True).start()

        threading.Thread(target=echo, daemon=True).start()
        proxy = chaos.CuttingProxy(upstream.getsockname())
        c = socket.create_connection(("127.0.0.1", proxy.port))
        c.sendall(b"hi")
        self.assertEqual(c.recv(10), b"hi")
        self.assertEqual(proxy.cut(), 1)
        c.settimeout(5)
        self.assertEqual(c.recv(10), b"")
        c2 = socket.create_connection(("127.0.0.1", proxy.port))
        c2.sendall(b"again")
        self.assertEqual(c2.recv(10), b"again")
        upstream.close()


if __name__ == "__main__":
    unittest.main()
