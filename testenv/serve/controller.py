"""testenv serve-controller: points each Seldon pod's executor port at a local model server.

For every pod with Seldon's executor container (seldon-container-engine), it writes a KWOK
PortForward object of the same name (owned by the pod, so it goes with it) that forwards the
executor's HTTP port (its --http_port argument, 8000 by default) to the model server chosen by
the pod's annotation test.seldon-deploy/serve ("ok", the default, "error-500", "wrong-shape",
"refuse") and the predictor's protocol (the executor's --protocol argument, from the
SeldonDeployment's spec.protocol: "seldon" -> seldon-core, "v2"/"kfserving" -> MLServer).
For MLServer it first loads a model under each graph node name (from the executor's
ENGINE_PREDICTOR), so /v2/models/<node name>/infer answers. See testenv/README.md.

Standard library only: it runs on the system python3. Its configuration is the JSON file given as
its only argument, written by testenv/cluster.
"""

import base64
import http.client
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ANNOTATION = "test.seldon-deploy/serve"
SERVED_BY = "test.seldon-deploy/served-by"
EXECUTOR = "seldon-container-engine"
MANAGER = "testenv-serve-controller"
PROTOCOLS = {"seldon": "v1", "v2": "v2", "kfserving": "v2"}
BEHAVIOURS = ("ok", "error-500", "wrong-shape", "refuse")


def log(msg):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}", flush=True)


class Api:
    """The few apiserver calls this needs, with the admin token."""

    def __init__(self, cfg):
        url = urllib.parse.urlparse(cfg["api"])
        self.host, self.port = url.hostname, url.port
        self.token = cfg["token"]
        self.ctx = ssl.create_default_context(cafile=cfg["ca"])

    def conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json"):
        c = self.conn(30)
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = c.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else None
        finally:
            c.close()

    def watch(self, path):
        """Yields (type, object) from a watch until the server ends it."""
        c = self.conn(330)
        try:
            c.request("GET", path, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
            resp = c.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"watch {path}: HTTP {resp.status}: {resp.read()[:300]!r}")
            for line in resp:
                if line.strip():
                    ev = json.loads(line)
                    yield ev["type"], ev["object"]
        finally:
            c.close()


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def graph_names(executor):
    """Every node name of the predictor's graph, root first (ENGINE_PREDICTOR is base64 JSON)."""
    for env in executor.get("env") or []:
        if env.get("name") == "ENGINE_PREDICTOR" and env.get("value"):
            try:
                predictor = json.loads(base64.b64decode(env["value"]))
            except ValueError:
                return []
            names, todo = [], [predictor.get("graph") or {}]
            while todo:
                node = todo.pop(0)
                if node.get("name"):
                    names.append(node["name"])
                todo.extend(node.get("children") or [])
            return names
    return []


class Controller:
    def __init__(self, cfg):
        self.cfg = cfg
        self.api = Api(cfg)
        self.written = {}  # pod uid -> the target it was given
        self.loaded = set()  # (server, model name) loaded in an MLServer

    def target(self, pod):
        """(server name, port, executor port, model names) for a pod, or None to leave it alone."""
        containers = (pod.get("spec") or {}).get("containers") or []
        executor = next((c for c in containers if c.get("name") == EXECUTOR), None)
        if executor is None:
            return None
        args = executor.get("args") or []
        protocol = arg_value(args, "--protocol") or "seldon"
        http_port = int(arg_value(args, "--http_port") or 8000)
        behaviour = ((pod["metadata"].get("annotations") or {}).get(ANNOTATION) or "ok").strip()
        if behaviour not in BEHAVIOURS:
            log(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}: unknown {ANNOTATION} "
                f"{behaviour!r} (one of {', '.join(BEHAVIOURS)}): no port-forward")
            return None
        if behaviour == "refuse":
            return ("refuse", self.cfg["refuse_port"], http_port, ())
        proto = PROTOCOLS.get(protocol)
        if proto is None:
            log(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}: no model server for "
                f"protocol {protocol!r}: no port-forward")
            return None
        server = f"{proto}-{behaviour}"
        names = tuple(graph_names(executor)) if proto == "v2" else ()
        return (server, self.cfg["servers"][server]["port"], http_port, names)

    def load_models(self, server, names):
        """Loads a RowSum under each name into the MLServer `server`, waiting for it to start."""
        spec = self.cfg["servers"][server]
        for name in names:
            if (server, name) in self.loaded:
                continue
            d = os.path.join(spec["repository"], "models", name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "model-settings.json"), "w") as f:
                json.dump({"name": name, "implementation": "mlserver_models.RowSum"}, f)
            url = f"http://127.0.0.1:{spec['port']}/v2/repository/models/{urllib.parse.quote(name)}/load"
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=10):
                        pass
                    self.loaded.add((server, name))
                    log(f"loaded model {name!r} into {server}")
                    break
                except (urllib.error.URLError, OSError) as e:
                    if time.monotonic() > deadline:
                        log(f"could not load model {name!r} into {server}: {e}")
                        break
                    time.sleep(0.2)

    def reconcile(self, pod):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return
        t = self.target(pod)
        if t is None or self.written.get(meta["uid"]) == t:
            return
        server, port, http_port, names = t
        if names:
            self.load_models(server, names)
        body = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "PortForward",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": {"app.kubernetes.io/managed-by": MANAGER},
                "annotations": {SERVED_BY: server},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}],
            },
            "spec": {"forwards": [{"ports": [http_port], "target": {"address": "127.0.0.1", "port": port}}]},
        }
        path = (f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{meta['namespace']}/portforwards/{meta['name']}"
                f"?fieldManager={MANAGER}&force=true")
        status, out = self.api.request("PATCH", path, body, "application/apply-patch+yaml")
        if status in (200, 201):
            self.written[meta["uid"]] = t
            log(f"pod {meta['namespace']}/{meta['name']}: port {http_port} -> {server} (127.0.0.1:{port})")
        else:
            log(f"pod {meta['namespace']}/{meta['name']}: writing its PortForward failed: HTTP {status}: "
                f"{(out or {}).get('message')}")

    def run(self):
        synced = self.cfg["synced_file"]
        while True:
            try:
                status, pods = self.api.request("GET", "/api/v1/pods")
                if status != 200:
                    raise RuntimeError(f"list pods: HTTP {status}")
                live = set()
                for pod in pods["items"]:
                    live.add(pod["metadata"]["uid"])
                    self.reconcile(pod)
                self.written = {u: t for u, t in self.written.items() if u in live}
                if not os.path.exists(synced):
                    open(synced, "w").close()
                rv = pods["metadata"]["resourceVersion"]
                while True:
                    path = f"/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}"
                    for kind, obj in self.api.watch(path):
                        if kind == "ERROR":
                            raise RuntimeError(f"watch error: {obj.get('message')}")
                        rv = obj["metadata"]["resourceVersion"]
                        if kind == "DELETED":
                            self.written.pop(obj["metadata"]["uid"], None)
                        elif kind in ("ADDED", "MODIFIED"):
                            self.reconcile(obj)
            except Exception as e:  # the apiserver restarts in fault tests: list again
                log(f"{type(e).__name__}: {e}; listing again in 1 s")
                time.sleep(1)


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    servers = ", ".join(f"{k}=127.0.0.1:{v['port']}" for k, v in cfg["servers"].items())
    log(f"watching pods; servers: {servers}, refuse=127.0.0.1:{cfg['refuse_port']}")
    Controller(cfg).run()


if __name__ == "__main__":
    main()
