import unittest

import _path  # noqa: F401
from benchlib import analysis
from benchlib.analysis import GONE, OTHER, Timeline


def sdep(t, state, typ="MODIFIED", ns="ns", name="s"):
    return {"t": t, "type": typ, "kind": "SeldonDeployment", "ns": ns, "name": name, "state": state}


def dep(t, spec, replicas, updated, available, gen=1, ogen=1, typ="MODIFIED", ns="ns", name="s-d", owner="s"):
    return {"t": t, "type": typ, "kind": "Deployment", "ns": ns, "name": name, "sdep": owner, "gen": gen,
            "ogen": ogen, "spec": spec, "replicas": replicas, "updated": updated, "available": available}


def lifecycle():
    """create at 0; ready at 1 from 2.0; scale write at 3.0; stale Available kept until the
    Deployment reaches 2 at 4.0; delete at 5.0; SDep gone 5.1; Deployment gone 5.6."""
    return [
        sdep(0.1, None, "ADDED"),
        dep(0.5, 1, 0, 0, 0, typ="ADDED"),
        sdep(1.0, "Creating"),
        dep(1.8, 1, 1, 1, 1),
        sdep(2.0, "Available"),
        # The scale write: the Deployment's spec goes to 2, generation 2, not yet observed.
        dep(3.2, 2, 1, 1, 1, gen=2, ogen=1),
        dep(3.3, 2, 2, 2, 1, gen=2, ogen=2),
        sdep(3.4, "Creating"),
        dep(3.9, 2, 2, 2, 2, gen=2, ogen=2),
        sdep(4.0, "Available"),
        sdep(5.1, "Available", "DELETED"),
        dep(5.6, 2, 2, 2, 2, gen=2, ogen=2, typ="DELETED"),
    ]


class StatusTest(unittest.TestCase):
    def test_deployment_rule(self):
        self.assertEqual(analysis.deployment_ready_at({"spec": 2, "gen": 2, "ogen": 2, "replicas": 2, "updated": 2, "available": 2}), 2)
        self.assertIsNone(analysis.deployment_ready_at({"spec": 2, "gen": 3, "ogen": 2, "replicas": 2, "updated": 2, "available": 2}))
        self.assertIsNone(analysis.deployment_ready_at({"spec": 2, "gen": 2, "ogen": 2, "replicas": 3, "updated": 2, "available": 2}))

    def test_sdep_status(self):
        d1 = {"spec": 1, "gen": 1, "ogen": 1, "replicas": 1, "updated": 1, "available": 1}
        d2 = dict(d1, spec=2, replicas=2, updated=2, available=2)
        self.assertEqual(analysis.sdep_status(None, []), GONE)
        self.assertEqual(analysis.sdep_status(None, [d1]), OTHER)
        self.assertEqual(analysis.sdep_status({"state": "Available"}, []), OTHER)
        self.assertEqual(analysis.sdep_status({"state": "Creating"}, [d1]), OTHER)
        self.assertEqual(analysis.sdep_status({"state": "Available"}, [d1]), ("ready", 1))
        self.assertEqual(analysis.sdep_status({"state": "Available"}, [d1, d2]), OTHER)


class TimelineTest(unittest.TestCase):
    def test_condition_times(self):
        tl = Timeline().feed(lifecycle())
        self.assertEqual(tl.first("ns", "s", ("ready", 1), after=0.0), 2.0)
        self.assertEqual(tl.first("ns", "s", ("ready", 2), after=3.0), 4.0)
        # Gone means the SDep AND its Deployment are gone, not just the SDep.
        self.assertEqual(tl.first("ns", "s", GONE, after=5.0), 5.6)
        self.assertIsNone(tl.first("ns", "s", ("ready", 3)))
        self.assertEqual(tl.names("ns"), ["s"])

    def test_condition_already_true_at_after(self):
        tl = Timeline().feed(lifecycle())
        self.assertEqual(tl.first("ns", "s", ("ready", 1), after=2.5), 2.5)

    def test_stale_available_after_scale_is_not_ready_at_two(self):
        # At 3.1 the SDep says Available but the Deployment is at 1: ready at 1, not at 2.
        tl = Timeline().feed(lifecycle()[:5])
        self.assertEqual(tl.status[("ns", "s")], ("ready", 1))

    def test_lags(self):
        tl = Timeline().feed(lifecycle())
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.05, scale=2.25, delete=4.5, done=5.0)
        self.assertAlmostEqual(lg["lag_ready1"], 0.25)
        self.assertAlmostEqual(lg["lag_ready2"], 0.5)
        # Exited at 5.0 while the Deployment was still there until 5.6: moved on before "gone".
        self.assertAlmostEqual(lg["lag_gone"], -0.6)

    def test_premature_move_on_gives_negative_lag(self):
        tl = Timeline().feed(lifecycle())
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.05, scale=3.0, delete=3.5, done=None)
        self.assertAlmostEqual(lg["lag_ready2"], -0.5)
        self.assertIsNone(lg["lag_gone"])

    def test_confirmed_waits_for_the_sdep_status(self):
        evs = [dict(sdep(0.1, "Available", "ADDED"), deps={"s-d": {"replicas": 1, "available": 1}}),
               dep(0.2, 1, 1, 1, 1, typ="ADDED"),
               dep(1.0, 2, 2, 2, 2, gen=2, ogen=2),
               dict(sdep(1.5, "Available"), deps={"s-d": {"replicas": 2, "available": 2}})]
        tl = Timeline().feed(evs)
        self.assertEqual(tl.first("ns", "s", ("ready", 2)), 1.0)
        self.assertEqual(tl.first("ns", "s", ("ready", 2), confirmed=True), 1.5)
        self.assertEqual(tl.first("ns", "s", ("ready", 1), confirmed=True), 0.2)
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.0, scale=0.5, delete=None, done=None)
        self.assertEqual((lg["ready2_at"], lg["ready2c_at"]), (1.0, 1.5))

    def test_early_flags(self):
        tl = Timeline().feed(lifecycle())
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.05, scale=2.25, delete=3.5, done=5.0)
        self.assertEqual((lg["early_ready1"], lg["early_ready2"], lg["early_gone"]), (False, True, True))
        # Deleted before ever being ready at 2: the condition never held, which counts as early.
        tl = Timeline().feed(lifecycle()[:8] + [sdep(3.5, "Creating", "DELETED"),
                                               dep(3.6, 2, 2, 2, 1, gen=2, ogen=2, typ="DELETED")])
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.05, scale=2.25, delete=3.45, done=3.7)
        self.assertIsNone(lg["lag_ready2"])
        self.assertTrue(lg["early_ready2"])
        self.assertFalse(lg["early_gone"])

    def test_missing_phase(self):
        tl = Timeline().feed(lifecycle())
        lg = analysis.lifecycle_lags(tl, "ns", "s", n1=1, n2=2, create=0.0, scale=None, delete=None, done=9.0)
        self.assertIsNone(lg["lag_ready1"])
        self.assertIsNone(lg["ready2_at"])

    def test_namespaces_and_names_are_separate(self):
        evs = [sdep(1.0, "Available", "ADDED", ns="a"), dep(1.1, 1, 1, 1, 1, typ="ADDED", ns="a"),
               sdep(1.2, "Available", "ADDED", ns="b"), dep(1.3, 2, 2, 2, 2, typ="ADDED", ns="b")]
        tl = Timeline().feed(evs)
        self.assertEqual(tl.first("a", "s", ("ready", 1)), 1.1)
        self.assertEqual(tl.first("b", "s", ("ready", 2)), 1.3)
        self.assertIsNone(tl.first("b", "s", ("ready", 1)))


if __name__ == "__main__":
    unittest.main()
