import unittest

import _path  # noqa: F401
from benchlib import report, selfreport


class ReportTest(unittest.TestCase):
    def test_fmt_stat(self):
        self.assertEqual(report.fmt_stat(None), "–")
        self.assertEqual(report.fmt_stat({"n": 0}), "–")
        self.assertEqual(report.fmt_stat({"n": 1, "median": 1.234, "min": 1.234, "max": 1.234}), "1.23")
        self.assertEqual(report.fmt_stat({"n": 3, "median": 0.2, "min": 0.1, "max": 0.35}, 1000, 0), "200 [100–350]")

    def test_fmt_lag(self):
        sm = {"ok": 3, "lag_ready2": {"n": 1, "median": -0.05, "min": -0.05, "max": -0.05}, "early_ready2": 3}
        self.assertEqual(report.fmt_lag(sm, "ready2"), "-50 (3/3 early)")
        self.assertEqual(report.fmt_lag({"ok": 1}, "gone"), "–")

    def test_fmt_verbs(self):
        self.assertEqual(report.fmt_verbs({"get": 3, "watch": 1.0, "total": 4}), "get 3, watch 1")
        self.assertEqual(report.fmt_verbs({}), "–")

    def test_table_escapes_and_aligns(self):
        t = report.table(["a", "b"], [["x|y", 1]])
        self.assertEqual(t.splitlines(), ["| a | b |", "| :--- | ---: |", "| x\\|y | 1 |"])

    def test_render_minimal(self):
        res = {"meta": {"command": "bench/run --quick", "date": "2026-01-01", "mode": "quick", "duration_s": 1,
                        "reps": 3, "machine": {"nproc": 2, "cpu_model": "X", "mem_gib": 1.0, "kernel": "Linux"},
                        "versions": {}, "fixture": "iris", "notes": ["n1"]},
               "peers": {"p": {"label": "P", "available": True}, "q": {"label": "Q", "available": False, "reason": "r"}},
               "single": {"order": ["p"], "summary": {"p": {"wall_s": {"n": 1, "median": 1.0, "min": 1.0, "max": 1.0},
                                                           "requests_median": {"get": 2}}}},
               "slow": {}, "scale": {"runs": [{"n": 10, "peer": "p", "skipped": "too big"}]}}
        md = report.render(res)
        self.assertIn("| P | 1.00 |", md)
        self.assertIn("Not measured: **Q**: r.", md)
        self.assertIn("skipped: too big", md)
        self.assertIn("- n1", md)


    def test_render_update_section(self):
        one = lambda v: {"n": 1, "median": v, "min": v, "max": v}  # noqa: E731
        upd = {"meta": {"command": "bench/run --only update --reps 1", "date": "2026-12-02", "duration_s": 60,
                        "reps": 1, "machine": {"nproc": 2}, "load_avg_1m": [3.0, 4.0], "seldon_deploy": "0.1.0"},
               "peers": {"seldon-deploy": {"label": "seldon-deploy apply", "available": True, "variant": "v"},
                         "kubectl-wait": {"label": "kubectl wait", "available": True, "variant": "w"}},
               "order": ["seldon-deploy", "kubectl-wait"],
               "fixture": {"v1": {"replicas": 2, "images": {"c": "img:1"}}, "v2": {"replicas": 2, "images": {"c": "img:2"}}},
               "summary": {"seldon-deploy": {"runs": 1, "ok": 1, "lag_update": one(0.012), "rollout_s": one(20.5),
                                             "requests_total": one(9), "requests_median": {"get": 2, "update": 1}},
                           "kubectl-wait": {"runs": 1, "ok": 1, "lag_update": one(-20.1), "early_update": 1,
                                            "early_pods": 1}},
               "notes": ["busy"]}
        md = "\n".join(report.render_update(upd))
        self.assertIn("## Update:", md)
        self.assertIn("| seldon-deploy apply | 1/1 | 12 | 0/1 | – | – | – | – | 20.50 |", md)
        self.assertIn("| kubectl wait | 1/1 | -20100 (1/1 early) | 1/1 |", md)
        self.assertIn("get 2, update 1", md)
        self.assertIn("img:1", md)
        self.assertIn("img:2", md)
        self.assertIn("- busy", md)
        self.assertEqual(report.render_update({}), [])


class SelfReportTest(unittest.TestCase):
    def test_bench_marks(self):
        out = "BENCH 10.5 start\nnoise\nBENCH 11.25 ready1\nBENCH x bad\n"
        self.assertEqual(selfreport.bench_marks(out), {"start": 10.5, "ready1": 11.25})

    def test_tool_phases_single_and_multi(self):
        single = '{"name": "s", "phases": [{"name": "create", "start": "1970-01-01T00:00:10Z", "duration_ms": 500, "outcome": "ok"}]}'
        got = selfreport.tool_phases(single)
        self.assertEqual(got, [{"name": "s", "phases": [{"name": "create", "start": 10.0, "end": 10.5, "outcome": "ok"}]}])
        multi = '{"deployments": [{"name": "a", "phases": []}, {"name": "b", "phases": [{"name": "x", "start": 20000000000000}]}]}'
        got = selfreport.tool_phases(multi)
        self.assertEqual([d["name"] for d in got], ["a", "b"])
        self.assertEqual(got[1]["phases"][0]["start"], 20000000000.0)
        self.assertIsNone(got[1]["phases"][0]["end"])
        self.assertEqual(selfreport.tool_phases("not json"), [])


if __name__ == "__main__":
    unittest.main()
