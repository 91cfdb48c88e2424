"""The soak section's rule, counts and rendering (no cluster)."""
import os
import tempfile
import unittest

import _path  # noqa: F401

from benchlib import report, soak


def curve(rss, every_min=1.0, per_min=100):
    """Samples at minute 0, 1, 2, ... with `per_min` lifecycles done each minute."""
    return [{"min": i * every_min, "rss_mb": r, "done": i * per_min} for i, r in enumerate(rss)]


def result(samples, minutes=30.0, **kw):
    s = {"minutes": minutes, "concurrency": 20, "sample_s": 60.0, "namespace": "soak", "manifests": 18020,
         "started": "01:02:03", "ran_out_at_min": None, "signals": ["SIGINT"], "exit_code": 130, "stop_s": 4.2,
         "samples": samples, "per_interval": [], "flatness": soak.flatness(samples, minutes),
         "growth_kb_per_lifecycle": soak.growth_per_lifecycle_kb(samples, minutes), "report_kb_per_lifecycle": 9.5,
         "report_bytes": 1, "counts": soak.count_reports([]), "left_behind": [], "plot": "soak-rss.png"}
    s.update(kw)
    return s


class WindowsTest(unittest.TestCase):
    def test_thirty_minutes_compares_20_30_with_5_15(self):
        self.assertEqual(soak.windows(30), ((5.0, 15.0), (20.0, 30.0)))

    def test_the_windows_scale_with_the_duration(self):
        (b0, b1), (l0, l1) = soak.windows(3)
        self.assertAlmostEqual(b0, 0.5)
        self.assertAlmostEqual(b1, 1.5)
        self.assertAlmostEqual(l0, 2.0)
        self.assertAlmostEqual(l1, 3.0)


class FlatnessTest(unittest.TestCase):
    def test_a_flat_curve_after_warm_up_is_flat(self):
        # Warm-up from 10 to 40 MB in the first minutes does not count.
        rss = [10, 25, 35, 39, 40] + [40 + (i % 3) * 0.5 for i in range(26)]
        fl = soak.flatness(curve(rss), 30)
        self.assertTrue(fl["flat"])
        self.assertEqual(fl["n_baseline"], 11)  # minutes 5..15, bounds included
        self.assertEqual(fl["n_late"], 11)      # minutes 20..30
        self.assertLess(abs(fl["change"]), 0.05)

    def test_a_steady_climb_is_not_flat(self):
        rss = [40 + i for i in range(31)]  # +1 MB a minute
        fl = soak.flatness(curve(rss), 30)
        self.assertFalse(fl["flat"])
        self.assertEqual(fl["baseline_mean_mb"], 50.0)
        self.assertEqual(fl["late_mean_mb"], 65.0)
        self.assertAlmostEqual(fl["change"], 0.3)
        self.assertEqual(fl["late_max_mb"], 70.0)

    def test_the_tolerance_is_on_the_mean_and_only_growth_fails(self):
        base = [100.0] * 20
        self.assertTrue(soak.flatness(curve(base + [104.9] * 11), 30)["flat"])
        self.assertFalse(soak.flatness(curve(base + [105.1] * 11), 30)["flat"])
        # A single late peak above 5% does not fail the mean; it shows in change_max.
        fl = soak.flatness(curve(base + [100.0] * 10 + [140.0]), 30)
        self.assertTrue(fl["flat"])
        self.assertAlmostEqual(fl["change_max"], 0.4)
        drop = soak.flatness(curve(base + [90.0] * 11), 30)
        self.assertTrue(drop["flat"])
        self.assertAlmostEqual(drop["change"], -0.1)

    def test_a_run_that_ended_early_has_no_verdict(self):
        fl = soak.flatness(curve([40] * 12), 30)  # minutes 0..11: no late sample
        self.assertIsNone(fl["flat"])
        self.assertEqual(fl["n_late"], 0)

    def test_fractional_sample_times(self):
        # A 3-minute run sampled every 20 s: baseline 0.5–1.5, late 2–3.
        samples = [{"min": round(i / 3, 3), "rss_mb": 20.0, "done": i} for i in range(10)]
        fl = soak.flatness(samples, 3)
        self.assertEqual((fl["n_baseline"], fl["n_late"]), (3, 4))
        self.assertTrue(fl["flat"])


class GrowthTest(unittest.TestCase):
    def test_slope_in_kib_per_lifecycle(self):
        # 1 MB per 100 lifecycles = 10.24 KiB each.
        samples = curve([40 + i for i in range(31)], per_min=100)
        self.assertAlmostEqual(soak.growth_per_lifecycle_kb(samples, 30), 10.24, places=2)

    def test_no_work_no_slope(self):
        self.assertIsNone(soak.growth_per_lifecycle_kb(curve([40] * 31, per_min=0), 30))


class CountsTest(unittest.TestCase):
    def test_completed_succeeded_and_interrupted(self):
        reps = [{"name": "a", "outcome": "success", "phases": [{}]},
                {"name": "b", "outcome": "timeout", "error": "wait-ready timed out", "phases": [{}],
                 "left_behind": ["SeldonDeployment/soak/b (u1)"]},
                {"name": "c", "outcome": "interrupted", "phases": [{}]},
                {"name": "d", "outcome": "interrupted", "phases": []}]
        c = soak.count_reports(reps)
        self.assertEqual((c["completed"], c["succeeded"]), (2, 1))
        self.assertEqual(c["failed"], [{"name": "b", "outcome": "timeout", "error": "wait-ready timed out"}])
        self.assertEqual((c["interrupted_in_flight"], c["never_started"]), (1, 1))
        self.assertEqual(c["left_behind_reported"], ["SeldonDeployment/soak/b (u1)"])

    def test_enough_manifests_for_a_lifecycle_every_two_seconds_per_slot(self):
        self.assertEqual(soak.manifest_count(30, 20), 30 * 60 * 20 // 2 + 20)

    def test_calibrated_count_is_the_margin_over_the_throughput(self):
        # 20 slots, 8 s a lifecycle: 2.5 a second, 4500 in 30 min; × 1.5, + one round.
        self.assertEqual(soak.manifest_count(30, 20, 8.0), 6750 + 20)

    def test_lifecycle_seconds_of_the_successes(self):
        ph = [{"start": "2026-01-01T00:00:00Z", "duration_ms": 1000},
              {"start": "2026-01-01T00:00:05.5Z", "duration_ms": 500}]
        reps = [{"outcome": "success", "phases": ph}, {"outcome": "timeout", "phases": ph},
                {"outcome": "success", "phases": []}]
        self.assertEqual(soak.lifecycle_seconds(reps), [6.0])


class RenderTest(unittest.TestCase):
    def test_flat(self):
        s = result(curve([40.0] * 31), calibration={"lifecycles": 40, "succeeded": 40, "median_lifecycle_s": 8.1})
        s["counts"] = soak.count_reports([{"name": "a", "outcome": "success", "phases": [{}]}] * 7)
        md = soak.render(s)
        self.assertTrue(md.startswith("## Soak"))
        self.assertIn("**Verdict**: **flat**: 40.0 MB (mean of 11) against 40.0 MB (mean of 11), +0.0%", md)
        self.assertIn("minutes 20–30 is at most 5% above the mean of those in minutes 5–15", md)
        self.assertIn("7 completed, 7 succeeded", md)
        self.assertIn("from 18020 generated manifests (1.5 × what a calibration run, 40 lifecycles", md)
        self.assertIn("**Left behind** in namespace `soak`", md)
        self.assertIn(": 0.", md)
        self.assertIn("![RSS over the soak](soak-rss.png)", md)
        self.assertIn("0.0: 40.0 (0), 1.0: 40.0 (100)", md)

    def test_not_flat_ran_out_and_left_behind(self):
        s = result(curve([40 + i for i in range(31)]), ran_out_at_min=29.5,
                   left_behind=["SeldonDeployment/soak-0001"], plot=None, plot_error="matplotlib failed: x")
        md = soak.render(s)
        self.assertIn("**not flat**", md)
        self.assertIn("+30.0%", md)
        self.assertIn("ended by itself", md)
        self.assertIn("SeldonDeployment/soak-0001", md)
        self.assertIn("(No plot: matplotlib failed: x.)", md)
        self.assertIn("10.24 KiB per lifecycle", md)

    def test_no_verdict(self):
        md = soak.render(result(curve([40.0] * 5), minutes=30))
        self.assertIn("**no verdict**", md)

    def test_report_includes_the_section_after_chaos(self):
        res = {"meta": {"command": "bench/run --soak", "date": "d", "mode": "one section only", "duration_s": 1,
                        "machine": {"nproc": 2, "cpu_model": "x", "mem_gib": 1.0, "kernel": "Linux"},
                        "versions": {}, "fixture": "f", "notes": []},
               "peers": {}, "soak": result(curve([40.0] * 31))}
        md = report.render(res)
        self.assertIn("## Soak: RSS over lifecycles back to back", md)


class PlotTest(unittest.TestCase):
    def test_draws_a_png(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("matplotlib not installed")
        s = result(curve([10, 30] + [40.0] * 29))
        s["counts"] = soak.count_reports([])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "soak-rss.png")
            soak.plot(s, path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class RssTest(unittest.TestCase):
    def test_reads_our_own_rss(self):
        self.assertGreater(soak.vm_rss_kb(os.getpid()), 1000)
        self.assertIsNone(soak.vm_rss_kb(2 ** 22 + 12345))


if __name__ == "__main__":
    unittest.main()
