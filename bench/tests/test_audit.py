import json
import os
import tempfile
import unittest

import _path  # noqa: F401
from benchlib import audit


def line(aid, verb, user, ts, stage="ResponseComplete", resource="seldondeployments", ns="bench-1", sub=None,
         ua="kubectl/v1.35.4 (linux/amd64) kubernetes/none", name="sklearn"):
    ref = {"resource": resource, "namespace": ns, "name": name}
    if sub:
        ref["subresource"] = sub
    return json.dumps({"kind": "Event", "auditID": aid, "stage": stage, "verb": verb, "user": {"username": user},
                       "userAgent": ua, "requestURI": "/x", "objectRef": ref, "responseStatus": {"code": 200},
                       "requestReceivedTimestamp": ts, "stageTimestamp": ts})


class AuditTest(unittest.TestCase):
    def test_timestamp(self):
        self.assertAlmostEqual(audit.parse_ts("1970-01-01T00:00:01.500000Z"), 1.5)

    def test_watch_counts_once_and_bad_lines_are_skipped(self):
        lines = [line("a", "watch", "u", "2026-01-01T00:00:00.000000Z", stage="ResponseStarted"),
                 "{not json", "",
                 line("a", "watch", "u", "2026-01-01T00:00:00.000000Z"),
                 line("b", "get", "u", "2026-01-01T00:00:01.000000Z"),
                 line("c", "get", "u", "2026-01-01T00:00:02.000000Z")]
        reqs = list(audit.parse_lines(lines))
        self.assertEqual(len(reqs), 3)
        self.assertEqual(audit.count_by_verb(reqs), {"get": 2, "watch": 1, "total": 3})

    def test_select_by_user_window_and_namespace(self):
        t0 = audit.parse_ts("2026-01-01T00:00:00Z")
        reqs = list(audit.parse_lines([
            line("a", "create", "ours", "2026-01-01T00:00:00.100000Z"),
            line("b", "create", "theirs", "2026-01-01T00:00:00.200000Z"),
            line("c", "get", "ours", "2026-01-01T00:00:05.000000Z"),
            line("d", "get", "ours", "2026-01-01T00:00:00.300000Z", ns="other"),
        ]))
        got = audit.select(reqs, user="ours", start=t0, end=t0 + 1)
        self.assertEqual([r.audit_id for r in got], ["a", "d"])
        got = audit.select(reqs, user="ours", namespace="bench-1")
        self.assertEqual([r.audit_id for r in got], ["a", "c"])

    def test_sdep_actions_ignore_status_writes_and_other_users(self):
        reqs = list(audit.parse_lines([
            line("1", "create", "u", "2026-01-01T00:00:01Z"),
            line("2", "update", "u", "2026-01-01T00:00:02Z", sub="status"),
            line("3", "patch", "u", "2026-01-01T00:00:03Z"),
            line("4", "update", "op", "2026-01-01T00:00:03.5Z"),
            line("5", "delete", "u", "2026-01-01T00:00:04Z"),
            line("6", "delete", "u", "2026-01-01T00:00:04Z", resource="pods"),
        ]))
        acts = audit.sdep_actions(reqs, user="u", namespace="bench-1")
        t = audit.parse_ts("2026-01-01T00:00:00Z")
        self.assertEqual(acts, {"create": [t + 1], "scale": [t + 3], "delete": [t + 4]})

    def test_sdep_actions_by_name(self):
        reqs = list(audit.parse_lines([
            line("1", "create", "u", "2026-01-01T00:00:01Z", name="a"),
            line("2", "create", "u", "2026-01-01T00:00:02Z", name="b"),
            line("3", "patch", "u", "2026-01-01T00:00:03Z", name="a"),
        ]))
        got = audit.sdep_actions_by_name(reqs, user="u", namespace="bench-1")
        t = audit.parse_ts("2026-01-01T00:00:00Z")
        self.assertEqual(sorted(got), ["a", "b"])
        self.assertEqual(got["a"]["scale"], [t + 3])
        self.assertEqual(got["b"], {"create": [t + 2], "scale": [], "delete": []})

    def test_components(self):
        self.assertEqual(audit.component_of("kube-controller-manager/v1.35.4 (linux/amd64) kubernetes/none/x"),
                         "kube-controller-manager")
        self.assertEqual(audit.component_of(""), "(none)")
        reqs = list(audit.parse_lines([line("1", "get", "a", "2026-01-01T00:00:01Z", ua="b/1"),
                                       line("2", "get", "a", "2026-01-01T00:00:01Z", ua="a/1"),
                                       line("3", "get", "a", "2026-01-01T00:00:01Z", ua="b/2")]))
        self.assertEqual(list(audit.count_by_component(reqs).items()), [("b", 2), ("a", 1)])

    def test_incremental_reading(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "audit.log")
            log = audit.AuditLog(p)
            self.assertEqual(log.mark()[:2], (0, 0))
            with open(p, "w") as f:
                f.write(line("1", "get", "u", "2026-01-01T00:00:01Z") + "\n")
            off = log.mark()
            with open(p, "a") as f:
                f.write(line("2", "list", "u", "2026-01-01T00:00:02Z") + "\n")
            self.assertEqual([r.audit_id for r in log.read_from(off)], ["2"])

    def test_reading_across_a_rotation(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "audit.log")
            with open(p, "w") as f:
                f.write(line("1", "get", "u", "2026-01-01T00:00:01Z") + "\n")
            log = audit.AuditLog(p)
            mark = log.mark()
            with open(p, "a") as f:
                f.write(line("2", "list", "u", "2026-01-01T00:00:02Z") + "\n")
            os.rename(p, os.path.join(d, "audit-2026-01-01T00-00-03.000.log"))  # what lumberjack does
            with open(p, "w") as f:
                f.write(line("3", "watch", "u", "2026-01-01T00:00:04Z") + "\n")
            with open(os.path.join(d, "other.log"), "w") as f:
                f.write(line("4", "get", "u", "2026-01-01T00:00:04Z") + "\n")
            self.assertEqual([r.audit_id for r in log.read_from(mark)], ["2", "3"])


if __name__ == "__main__":
    unittest.main()
