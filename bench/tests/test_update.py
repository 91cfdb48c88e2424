"""The update benchmark's truth ("rollout complete") and detection lag, on synthetic watcher
events: no cluster, no timing."""
import unittest

import _path  # noqa: F401
from benchlib import analysis

A, B = "seldonio/mock_classifier_rest:1.3", "seldonio/mock_classifier_rest:1.4"
DEP = "model-default-0-classifier"
EXPECT_B = {DEP: {"replicas": 2, "images": {"classifier": B}}}
EXPECT_A = {DEP: {"replicas": 2, "images": {"classifier": A}}}


def sdep(t, state="Available", typ="MODIFIED", ns="ns", name="model", replicas=2, available=2):
    return {"t": t, "type": typ, "kind": "SeldonDeployment", "ns": ns, "name": name, "state": state,
            "deps": {DEP: {"replicas": replicas, "available": available}}}


def dep(t, image, replicas, updated, available, gen=2, ogen=2, spec=2, typ="MODIFIED", ns="ns", name=DEP,
        owner="model"):
    return {"t": t, "type": typ, "kind": "Deployment", "ns": ns, "name": name, "sdep": owner, "gen": gen,
            "ogen": ogen, "spec": spec, "replicas": replicas, "updated": updated, "available": available,
            "images": {"classifier": image, "seldon-container-engine": "seldonio/seldon-core-executor:1.19.0"}}


def rolling_update():
    """v1 (image A, 2/2) live and ready; the new spec is written at 10.0; the operator updates
    the Deployment's template at 10.05; the new pods take 10 s each, one at a time (surge 1,
    maxUnavailable 0); the last old pod goes at 30.3. Simplified: the SDep says Available
    throughout (on testenv the operator says Creating while a surge pod is not ready; see
    test_needs_the_sdep_available)."""
    return [
        sdep(1.0, typ="ADDED"),
        dep(1.1, A, 2, 2, 2, gen=1, ogen=1, typ="ADDED"),
        # The template changed; the Deployment controller has not observed it yet.
        dep(10.05, B, 2, 2, 2, gen=2, ogen=1),
        dep(10.1, B, 3, 1, 2),
        sdep(10.2, replicas=3),          # status rewritten: still Available
        dep(20.1, B, 3, 1, 3),           # first new pod Ready
        dep(20.2, B, 3, 2, 2),           # one old pod gone, second new pod started
        dep(30.2, B, 3, 2, 3),           # second new pod Ready, last old pod still there
        dep(30.3, B, 2, 2, 2),           # last old pod gone: complete
        sdep(30.4),                      # the operator's status catches up
    ]


class RolloutCompleteTest(unittest.TestCase):
    def test_complete_when_the_last_old_pod_is_gone(self):
        self.assertEqual(analysis.rollout_complete_at(rolling_update(), "ns", "model", EXPECT_B, after=10.0), 30.3)

    def test_the_old_version_being_complete_does_not_count(self):
        evs = rolling_update()
        # v1 was complete before the update, with the other image: not the rollout we wait for.
        self.assertEqual(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_A, after=5.0), 5.0)
        self.assertEqual(analysis.rollout_complete_at(evs[:2], "ns", "model", EXPECT_B, after=5.0), None)

    def test_new_image_and_counts_before_the_generation_is_observed_do_not_count(self):
        evs = rolling_update()[:2] + [dep(10.05, B, 2, 2, 2, gen=2, ogen=1)]
        self.assertIsNone(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0))

    def test_all_available_with_an_old_pod_left_does_not_count(self):
        evs = rolling_update()[:8]  # up to 30.2: 3 pods, 2 updated, 3 available
        self.assertIsNone(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0))

    def test_needs_the_sdep_available(self):
        evs = rolling_update()[:-1] + [sdep(30.5)]
        evs.insert(8, sdep(30.25, "Creating"))
        self.assertEqual(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0), 30.5)

    def test_a_removed_components_deployment_must_be_gone(self):
        canary = "model-canary-0-classifier"
        evs = rolling_update()
        evs.insert(2, dep(2.0, A, 1, 1, 1, gen=1, ogen=1, spec=1, typ="ADDED", name=canary))
        evs.append(dep(31.0, A, 1, 1, 1, gen=1, ogen=1, spec=1, typ="DELETED", name=canary))
        self.assertEqual(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0), 31.0)
        # A missing expected Deployment is not complete either.
        two = dict(EXPECT_B, **{canary: {"replicas": 1, "images": {"classifier": B}}})
        self.assertIsNone(analysis.rollout_complete_at(rolling_update(), "ns", "model", two, after=10.0))

    def test_other_namespaces_and_objects_are_ignored(self):
        evs = rolling_update()
        evs += [dep(30.35, A, 1, 1, 1, ns="other"), sdep(30.36, "Creating", ns="other"),
                sdep(30.37, "Creating", name="someone-else"),
                dep(30.38, A, 1, 1, 1, name="someone-else-d", owner="someone-else")]
        self.assertEqual(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0), 30.3)
        self.assertEqual(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=31.0), 31.0)


class UpdateLagTest(unittest.TestCase):
    def test_waiting_for_the_rollout_gives_a_small_positive_lag(self):
        lg = analysis.update_lags(rolling_update(), "ns", "model", EXPECT_B, update=10.0, done=30.45, own=30.41)
        self.assertEqual(lg["complete_at"], 30.3)
        self.assertAlmostEqual(lg["rollout_s"], 20.3)
        self.assertAlmostEqual(lg["lag_update"], 0.15)
        self.assertAlmostEqual(lg["self_lag_update"], 0.11)
        self.assertFalse(lg["early_update"])
        # The SDep's own status shows 2/2 from 30.4: 100 ms of the lag are the operator's.
        self.assertEqual(lg["confirmed_at"], 30.4)
        self.assertAlmostEqual(lg["status_delay"], 0.1)
        self.assertAlmostEqual(lg["clag_update"], 0.01)

    def test_confirmed_needs_the_status_at_n_for_exactly_the_expected_deployments(self):
        evs = rolling_update()[:-1]
        self.assertIsNone(analysis.rollout_complete_at(evs, "ns", "model", EXPECT_B, after=10.0, level=analysis.CONFIRMED))
        extra = dict(sdep(30.4), deps={DEP: {"replicas": 2, "available": 2}, "gone": {"replicas": 1, "available": 1}})
        self.assertIsNone(analysis.rollout_complete_at(evs + [extra], "ns", "model", EXPECT_B, after=10.0, level=analysis.CONFIRMED))
        # A status at 2/2 alone (v1's) is not a finished rollout.
        self.assertEqual(analysis.rollout_complete_at(evs[:2], "ns", "model", EXPECT_A, after=5.0, level=analysis.CONFIRMED), 5.0)
        self.assertIsNone(analysis.rollout_complete_at(evs[:2], "ns", "model", EXPECT_B, after=5.0, level=analysis.CONFIRMED))

    def test_trusting_the_stale_ready_condition_gives_a_negative_lag(self):
        # `kubectl wait --for=condition=ready` right after the apply: Ready is still True.
        lg = analysis.update_lags(rolling_update(), "ns", "model", EXPECT_B, update=10.0, done=10.3)
        self.assertAlmostEqual(lg["lag_update"], -20.0)
        self.assertIsNone(lg["self_lag_update"])
        self.assertTrue(lg["early_update"])
        self.assertTrue(lg["early_pods"])

    def test_leaving_when_the_pods_are_done_but_the_sdep_is_not_yet_available(self):
        # What `kubectl rollout status` can do: the Deployment is done at 30.3, the operator
        # says Creating until 30.5. Early by the full rule, but no old pod was left.
        evs = rolling_update()[:-1] + [sdep(30.5)]
        evs.insert(8, sdep(30.25, "Creating"))
        lg = analysis.update_lags(evs, "ns", "model", EXPECT_B, update=10.0, done=30.35)
        self.assertEqual((lg["pods_done_at"], lg["complete_at"]), (30.3, 30.5))
        self.assertAlmostEqual(lg["lag_update"], -0.15)
        self.assertTrue(lg["early_update"])
        self.assertFalse(lg["early_pods"])

    def test_no_update_seen(self):
        lg = analysis.update_lags(rolling_update(), "ns", "model", EXPECT_B, update=None, done=12.0)
        self.assertIsNone(lg["complete_at"])
        self.assertIsNone(lg["lag_update"])


if __name__ == "__main__":
    unittest.main()
