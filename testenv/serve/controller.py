"""testenv serve-controller: points each Seldon pod's executor port at a local model server.

For every pod with Seldon's executor container (seldon-container-engine), it writes a KWOK
PortForward object of the same name (owned by the pod, so it goes with it) that forwards the
executor's HTTP port (its --http_port argument, 8000 by default) to the model server chosen by
the pod's annotation test.seldon-deploy/serve ("ok", the default, "error-500", "wrong-shape",
"refuse") and the predictor's protocol (the executor's --protocol argument, from the
SeldonDeployment's spec.protocol: "seldon" -> seldon-core, "v2"/"kfserving" -> MLServer).
For MLServer it first loads a model under each graph node name (from the executor's
ENGINE_PREDICTOR), so /v2/models/<node name>/infer answers. See testenv/README.md.

KWOK turns such a pod Ready only once it carries test.seldon-deploy/forward-ready: "true"
(testenv/config/kwok.yaml), which this sets after a port-forward through KWOK itself reached the
pod's model server (or, for "refuse", was refused): so a client that port-forwards as soon as the
pod is Ready never meets KWOK's "no forward found" (KWOK learns PortForwards from a watch of its
own, so the write alone does not prove KWOK has it).

Standard library only: it runs on the system python3. Its configuration is the JSON file given as
its only argument, written by testenv/cluster.
"""

import base64
import http.client
import json
import os
import socket
import struct
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ANNOTATION = "test.seldon-deploy/serve"
SERVED_BY = "test.seldon-deploy/served-by"
FORWARD_READY = "test.seldon-deploy/forward-ready"
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


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def ws_frame(payload):
    """A masked binary WebSocket frame (RFC 6455: a client masks what it sends)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read(sock):
    """(opcode, payload) of the next WebSocket frame from the server (unmasked)."""
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    return b0 & 0x0F, recv_exact(sock, n)


def kwok_port_forward(kwok_port, namespace, pod, port, request):
    """Sends `request` (raw HTTP) through KWOK's kubelet port-forward to the pod's `port`, as the
    apiserver would (but straight to KWOK, so tests' audit checks see only their own sessions),
    over WebSocket with the v4.channel.k8s.io protocol: each message starts with its channel,
    0 data, 1 error, and each channel first carries the port. Returns ("data", bytes) with what
    the server answered, or ("error", text) with KWOK's error, e.g. "no forward found"."""
    sock = socket.create_connection(("127.0.0.1", kwok_port), timeout=10)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"/portForward/{urllib.parse.quote(namespace)}/{urllib.parse.quote(pod)}?port={port}"
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{kwok_port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += recv_exact(sock, 1)
        if not head.startswith(b"HTTP/1.1 101"):
            return "error", head.split(b"\r\n", 1)[0].decode(errors="replace")
        sock.sendall(ws_frame(b"\x00" + request))
        data, prefixes = b"", {0: 2, 1: 2}  # each channel's first 2 bytes are the port
        while True:
            try:
                op, payload = ws_read(sock)
            except (ConnectionError, socket.timeout):
                return "data", data
            if op == 0x8:  # close
                return "data", data
            if op not in (0x0, 0x1, 0x2) or not payload:
                continue
            channel, body = payload[0], payload[1:]
            skip = min(prefixes.get(channel, 0), len(body))
            prefixes[channel] = prefixes.get(channel, 0) - skip
            body = body[skip:]
            if channel == 1 and body:
                return "error", body.decode(errors="replace")
            if channel == 0:
                data += body
                if b"\r\n\r\n" in data:  # the status line and headers are enough
                    return "data", data
    finally:
        sock.close()


class Controller:
    def __init__(self, cfg):
        self.cfg = cfg
        self.api = Api(cfg)
        self.written = {}  # pod uid -> the target it was given
        self.loaded = set()  # (server, model name) loaded in an MLServer
        # Each pod is reconciled on a thread of its own: one whose check waits (up to 30 s for a
        # port-forward KWOK never learns, e.g. of a pod deleted at once) must not hold up the
        # others' readiness. `busy`: uids with a worker; `newer`: the latest version of a busy
        # pod seen meanwhile, which its worker takes up next.
        self.lock = threading.Lock()
        self.busy = set()
        self.newer = {}

    def target(self, pod):
        """(server name, port, executor port, model names) for a pod, server None when it gets no
        PortForward (it is still marked forward-ready), or None to leave it alone."""
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
            return (None, None, http_port, ())
        if behaviour == "refuse":
            return ("refuse", self.cfg["refuse_port"], http_port, ())
        proto = PROTOCOLS.get(protocol)
        if proto is None:
            log(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}: no model server for "
                f"protocol {protocol!r}: no port-forward")
            return (None, None, http_port, ())
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

    def forwarded(self, meta, server, http_port, names):
        """How many port-forwards through KWOK it took to reach `server` and see it answer (for
        "refuse": be refused), retried while KWOK has not yet seen the PortForward; 0: never."""
        ns, name = meta["namespace"], meta["name"]
        paths = [f"/v2/models/{urllib.parse.quote(n)}/ready" for n in names] or ["/ready"]
        deadline, tries = time.monotonic() + 30, 0
        for path in paths:
            request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()
            while True:
                tries += 1
                try:
                    kind, out = kwok_port_forward(self.cfg["kwok_port"], ns, name, http_port, request)
                except OSError as e:
                    kind, out = "error", f"{type(e).__name__}: {e}"
                if server == "refuse":
                    if kind == "error" and "connection refused" in out:
                        break
                elif kind == "data" and out.split(b" ", 2)[1:2] == [b"200"]:
                    break
                if time.monotonic() > deadline:
                    log(f"pod {ns}/{name}: a port-forward through KWOK to {server} {path} got {kind}: "
                        f"{out[:200]!r}")
                    return 0
                time.sleep(0.1)
        return tries

    def mark_ready(self, meta):
        """Sets the forward-ready annotation KWOK waits for before it turns the pod Ready."""
        if (meta.get("annotations") or {}).get(FORWARD_READY) == "true":
            return
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}?fieldManager={MANAGER}"
        body = {"metadata": {"annotations": {FORWARD_READY: "true"}}}
        status, out = self.api.request("PATCH", path, body, "application/merge-patch+json")
        if status == 404:
            return
        if status != 200:
            raise RuntimeError(f"pod {meta['namespace']}/{meta['name']}: annotating it {FORWARD_READY} "
                               f"failed: HTTP {status}: {(out or {}).get('message')}")

    def reconcile(self, pod):
        """Points the pod's executor port at its server, then lets KWOK turn it Ready. Raises when
        that fails, so that run() lists the pods again and retries."""
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return
        t = self.target(pod)
        if t is None or self.written.get(meta["uid"]) == t:
            return
        server, port, http_port, names = t
        if server is not None:
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
            if status not in (200, 201):
                raise RuntimeError(f"pod {meta['namespace']}/{meta['name']}: writing its PortForward failed: "
                                   f"HTTP {status}: {(out or {}).get('message')}")
            tries = self.forwarded(meta, server, http_port, names)
            if not tries:
                raise RuntimeError(f"pod {meta['namespace']}/{meta['name']}: its port-forward does not "
                                   f"reach {server}")
            log(f"pod {meta['namespace']}/{meta['name']}: port {http_port} -> {server} (127.0.0.1:{port}), "
                f"reached through KWOK at try {tries}")
        self.mark_ready(meta)
        self.written[meta["uid"]] = t

    def try_reconcile(self, pod):
        try:
            self.reconcile(pod)
            return True
        except Exception as e:  # logged and retried: the pod stays not Ready meanwhile
            log(f"{type(e).__name__}: {e}")
            return False

    def submit(self, pod):
        """Reconciles `pod` on a worker of its own, or hands it to the pod's running worker."""
        uid = pod["metadata"]["uid"]
        with self.lock:
            if uid in self.busy:
                self.newer[uid] = pod
                return
            self.busy.add(uid)
        threading.Thread(target=self.work, args=(pod,), daemon=True).start()

    def work(self, pod):
        """Reconciles until it succeeds for the newest version seen, retrying a failure each
        second from a fresh read, and stops once the pod is gone or being deleted."""
        meta = pod["metadata"]
        uid = meta["uid"]
        while True:
            ok = self.try_reconcile(pod)
            with self.lock:
                newer = self.newer.pop(uid, None)
                if ok and newer is None:
                    self.busy.discard(uid)
                    return
            if newer is not None:
                pod = newer
                continue
            time.sleep(1)
            try:
                status, fresh = self.api.request("GET", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}")
            except OSError as e:  # the apiserver restarting: try again
                log(f"pod {meta['namespace']}/{meta['name']}: re-reading it failed: {e}")
                continue
            if status == 200 and fresh["metadata"]["uid"] == uid and not fresh["metadata"].get("deletionTimestamp"):
                pod = fresh
                continue
            if status in (200, 404):
                with self.lock:
                    self.busy.discard(uid)
                    self.newer.pop(uid, None)
                return

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
                    self.submit(pod)
                with self.lock:
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
                            with self.lock:
                                self.written.pop(obj["metadata"]["uid"], None)
                        elif kind in ("ADDED", "MODIFIED"):
                            self.submit(obj)
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
