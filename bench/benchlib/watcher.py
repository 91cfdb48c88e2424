"""The independent watcher: streams SeldonDeployment and Deployment watch events of the
benchmark's namespaces and writes one JSON line per event, stamped with its arrival time.

Run as its own process:  python3 -m benchlib.watcher --kubeconfig K --out FILE [--ns-prefix bench-]
It writes {"type": "SYNCED"} once both watches are established, and relists on 410 Gone
(emitting DELETED for objects that vanished meanwhile), so it never misses a final state.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Callable

from .kube import Api, ApiError, deploy_path, sdep_path


def sdep_fields(obj: dict) -> dict:
    st = obj.get("status") or {}
    deps = {k: {"replicas": v.get("replicas", 0), "available": v.get("availableReplicas", 0)}
            for k, v in (st.get("deploymentStatus") or {}).items()}
    return {"state": st.get("state"), "deps": deps}


def deployment_fields(obj: dict) -> dict:
    md, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    owner = (md.get("labels") or {}).get("seldon-deployment-id")
    for ref in md.get("ownerReferences") or []:
        if ref.get("kind") == "SeldonDeployment" and ref.get("controller"):
            owner = ref.get("name")
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return {"sdep": owner, "gen": md.get("generation", 0), "ogen": st.get("observedGeneration", 0),
            "spec": spec.get("replicas", 1), "replicas": st.get("replicas", 0),
            "updated": st.get("updatedReplicas", 0), "available": st.get("availableReplicas", 0),
            "ready": st.get("readyReplicas", 0),
            # The pod template's images, for the update benchmark's "runs the new version".
            "images": {c.get("name", ""): c.get("image") for c in containers}}


class Sink:
    def __init__(self, path: str):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, rec: dict) -> None:
        line = json.dumps(rec, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")


class KindWatcher(threading.Thread):
    def __init__(self, api: Api, kind: str, path: str, extract: Callable[[dict], dict], prefix: str,
                 sink: Sink, synced: threading.Event, query: str = ""):
        super().__init__(daemon=True, name=f"watch-{kind}")
        self.api, self.kind, self.path, self.extract = api, kind, path, extract
        self.prefix, self.sink, self.synced, self.query = prefix, sink, synced, query
        self.known: dict[tuple[str, str], str] = {}  # (ns, name) -> uid

    def emit(self, typ: str, obj: dict, t: float) -> None:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        if not ns.startswith(self.prefix):
            return
        rec = {"t": t, "type": typ, "kind": self.kind, "ns": ns, "name": name, "uid": md.get("uid"),
               "rv": md.get("resourceVersion")}
        rec.update(self.extract(obj))
        if typ == "DELETED":
            self.known.pop((ns, name), None)
        else:
            self.known[(ns, name)] = md.get("uid")
        self.sink.write(rec)

    def relist(self) -> str:
        t = time.time()
        lst = self.api.get(self.path + "?" + self.query, timeout=120)
        seen = set()
        for obj in lst.get("items", []):
            md = obj.get("metadata") or {}
            seen.add((md.get("namespace", ""), md.get("name", "")))
            self.emit("MODIFIED" if (md.get("namespace"), md.get("name")) in self.known else "ADDED", obj, t)
        for (ns, name) in list(self.known):
            if (ns, name) not in seen:
                self.emit("DELETED", {"metadata": {"namespace": ns, "name": name, "uid": self.known[(ns, name)]}}, t)
        return lst["metadata"]["resourceVersion"]

    def run(self) -> None:
        rv = None
        backoff = 0.5
        while True:
            try:
                if rv is None:
                    rv = self.relist()
                    self.synced.set()
                q = f"watch=1&allowWatchBookmarks=true&timeoutSeconds=290&resourceVersion={rv}"
                if self.query:
                    q += "&" + self.query
                for line in self.api.watch_lines(self.path + "?" + q, timeout=330):
                    t = time.time()
                    ev = json.loads(line)
                    typ, obj = ev.get("type"), ev.get("object") or {}
                    if typ == "ERROR":
                        if obj.get("code") == 410:
                            rv = None
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if typ == "BOOKMARK":
                        continue
                    self.emit(typ, obj, t)
                backoff = 0.5
            except (OSError, ApiError, ValueError) as e:
                if isinstance(e, ApiError) and e.status == 410:
                    rv = None
                self.sink.write({"t": time.time(), "type": "WATCH-ERROR", "kind": self.kind, "error": str(e)[:200]})
                time.sleep(backoff)
                backoff = min(backoff * 2, 5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ns-prefix", default="bench-")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = Api(a.kubeconfig, user_agent="seldon-deploy-bench-watcher")
    sink = Sink(a.out)
    ev1, ev2 = threading.Event(), threading.Event()
    w1 = KindWatcher(api, "SeldonDeployment", sdep_path(), sdep_fields, a.ns_prefix, sink, ev1)
    w2 = KindWatcher(api, "Deployment", deploy_path(), deployment_fields, a.ns_prefix, sink, ev2,
                     query="labelSelector=seldon-deployment-id")
    w1.start(); w2.start()
    ev1.wait(); ev2.wait()
    # The watches are requested right after the lists; give them a moment to be established.
    time.sleep(0.3)
    sink.write({"t": time.time(), "type": "SYNCED"})
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
