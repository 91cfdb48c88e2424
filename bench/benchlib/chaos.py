"""`bench/run --chaos`: many lifecycles and applies while the cluster misbehaves.

One `seldon-deploy run` process runs N lifecycles (`--chaos-lifecycles`, 200) and one
`seldon-deploy apply` process ships a new version into M live SeldonDeployments
(`--chaos-applies`, 50), each a rollout, both at once, through a TCP proxy in front of the API
server. Meanwhile, on a schedule drawn from a fixed seed (`--chaos-seed`), the kube-apiserver
is SIGKILLed and restarted (every 20 s), the Seldon operator restarted (every 30 s) and every
connection through the proxy cut (every 7 s), each with a few seconds of seeded jitter.

KWOK, which plays kubelet, is restarted after each apiserver restart. Its informers back off
after their watches break, its PortForward one included, and testenv turns a Seldon pod Ready
only once its port-forward answers (testenv/README.md): with the apiserver killed every 20 s,
KWOK never caught up, and new pods stayed Pending for minutes (a first run had 10 of 50 applies
and most lifecycles stuck behind them). A real kubelet has no such gate; a fresh KWOK stands in
for a kubelet that recovered.

Then it checks, per SeldonDeployment: the exit code is 0 or a failure whose report names its
cause; no exit 0 is a wrong success (a lifecycle's object and children are gone; an apply's
Deployments all run the new image, ready); nothing of the lifecycles is left behind. And, per
fault kind, what it cost: the watch relists, watch errors and retried requests counted in the
reports' process-wide counters within 15 s after each fault, and the extra time of the
lifecycles it hit (median wall of those overlapping a fault of that kind against those
overlapping no fault at all).
"""
from __future__ import annotations

import json
import os
import random
import select
import socket
import statistics
import subprocess
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from .kube import Api

FAULTS = {
    # kind: (period s, jitter s)
    "kube-apiserver kill+restart": (20.0, 3.0),
    "operator restart": (30.0, 4.0),
    "connections cut": (7.0, 2.0),
}
# What a fault is charged with: counters moved within this long after it.
WINDOW = 15.0


def schedule(seed: int, horizon: float) -> list[tuple[float, str]]:
    """The faults to inject, (seconds after the start, kind), sorted: from `seed` alone."""
    rng = random.Random(seed)
    out = []
    for kind, (period, jitter) in FAULTS.items():
        t = period
        while t < horizon:
            out.append((max(1.0, t + rng.uniform(-jitter, jitter)), kind))
            t += period
    return sorted(out)


class CuttingProxy:
    """A TCP proxy to the API server whose `cut()` closes every open connection (TLS passes
    through: the clients' watches and requests break as on a network fault)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[tuple[socket.socket, socket.socket]] = []
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.open.append((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                r, _, _ = select.select([a, b], [], [], 60)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
            with self.lock:
                self.open = [p for p in self.open if p != (a, b)]

    def cut(self) -> int:
        with self.lock:
            pairs, self.open = self.open, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
        self.cuts += len(pairs)
        return len(pairs)


def proxied_kubeconfig(src: str, port: int, dst: str) -> str:
    with open(src) as f:
        text = f.read()
    import re
    text = re.sub(r"(server:\s*https://)[^\s]+", rf"\g<1>127.0.0.1:{port}", text)
    with open(dst, "w") as f:
        f.write(text)
    os.chmod(dst, 0o600)
    return dst


def renamed(src: str, old: str, new: str, dst: str) -> None:
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(text.replace(f"name: {old}", f"name: {new}", 1))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")


def parse_start(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def inject(plan, procs: dict, t0: float, cluster, proxy: "CuttingProxy", log) -> list[dict]:
    """Injects `plan`'s faults on time until both processes have ended; returns what was done."""
    def ended() -> bool:
        return all(p.poll() is not None for p in procs.values())

    injected: list[dict] = []
    for at, kind in plan:
        while time.time() - t0 < at and not ended():
            time.sleep(0.05)
        if ended():
            break
        start = time.time()
        detail = ""
        if kind == "connections cut":
            detail = f"{proxy.cut()} connections"
        elif kind == "kube-apiserver kill+restart":
            cluster.cmd("kill", "kube-apiserver")
            time.sleep(0.5)
            cluster.cmd("start", "kube-apiserver")
            cluster.cmd("restart", "kwok")  # see the module's doc: a kubelet that recovered
        else:
            cluster.cmd("restart", "seldon-operator")
        injected.append({"at": start - t0, "kind": kind, "took": time.time() - start, "detail": detail})
        log(f"chaos: +{start - t0:6.1f}s {kind} {detail} ({time.time() - start:.1f}s)")
    return injected


def phase_times(reports: list[dict]) -> dict:
    """Per phase name: how many, and the median, p90 and max seconds, from the reports."""
    by: dict[str, list[float]] = {}
    for rep in reports:
        for p in rep.get("phases") or []:
            by.setdefault(p["name"], []).append(p["duration_ms"] / 1000)
    return {name: {"n": len(v), "median_s": round(statistics.median(v), 1),
                   "p90_s": round(sorted(v)[int(0.9 * (len(v) - 1))], 1), "max_s": round(max(v), 1)}
            for name, v in by.items()}


def run_chaos(ctx, args, log) -> dict:  # noqa: C901 (one linear script)
    """Runs the chaos section on `ctx`'s (started) cluster; returns its results."""
    api: Api = ctx.api
    cluster = ctx.cluster
    scratch = os.path.join(ctx.scratch, "chaos")
    os.makedirs(scratch, exist_ok=True)
    n_life, n_apply, conc = args.chaos_lifecycles, args.chaos_applies, args.chaos_concurrency
    seed = args.chaos_seed
    from .main import BENCH, ensure_namespace, ensure_nodes
    ensure_nodes(api, 3 + (2 * conc + 2 * n_apply * 2) // 60 + 1)
    life_ns, apply_ns = "chaos-lifecycles", "chaos-applies"
    for ns in (life_ns, apply_ns):
        ensure_namespace(api, ns)
    life_dir, v1_dir, v2_dir = (os.path.join(scratch, d) for d in ("life", "v1", "v2"))
    for d in (life_dir, v1_dir, v2_dir):
        os.makedirs(d, exist_ok=True)
    for i in range(n_life):
        renamed(os.path.join(BENCH, "fixtures", "iris.yaml"), "sklearn", f"life-{i:03d}", os.path.join(life_dir, f"{i:03d}.yaml"))
    for i in range(n_apply):
        renamed(os.path.join(BENCH, "fixtures", "update-v1.yaml"), "model", f"app-{i:02d}", os.path.join(v1_dir, f"{i:02d}.yaml"))
        renamed(os.path.join(BENCH, "fixtures", "update-v2.yaml"), "model", f"app-{i:02d}", os.path.join(v2_dir, f"{i:02d}.yaml"))
        # A rollout of a few seconds, not the update section's 10 s per pod: 50 of them.
        with open(os.path.join(v2_dir, f"{i:02d}.yaml")) as f:
            text = f.read()
        with open(os.path.join(v2_dir, f"{i:02d}.yaml"), "w") as f:
            f.write(text.replace('ready-delay: "10s"', 'ready-delay: "2s"'))
    binary = ctx.binary
    admin = cluster.kubeconfig
    # The v1 objects, live and ready before the faults (not measured).
    log(f"chaos: creating {n_apply} v1 SeldonDeployments")
    r = subprocess.run([binary, "apply", "-n", apply_ns, "-f", v1_dir, "--concurrency", "10", "--timeout", "5m",
                        "-o", "json", "--kubeconfig", admin], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"the v1 set-up failed: {r.stderr[-2000:]}")

    from .kube import read_kubeconfig
    import urllib.parse
    u = urllib.parse.urlparse(read_kubeconfig(admin)["server"])
    proxy = CuttingProxy((u.hostname or "127.0.0.1", u.port or 443))
    kc = proxied_kubeconfig(admin, proxy.port, os.path.join(scratch, "proxied.kubeconfig"))

    plan = schedule(seed, args.chaos_horizon)
    t0 = time.time()
    procs = {
        "lifecycles": subprocess.Popen(
            [binary, "run", "-n", life_ns, "-f", life_dir, "--concurrency", str(conc), "--replicas", "2",
             "--timeout", "5m", "-o", "json", "--kubeconfig", kc],
            stdout=open(os.path.join(scratch, "life.json"), "w"), stderr=open(os.path.join(scratch, "life.err"), "w")),
        "applies": subprocess.Popen(
            [binary, "apply", "-n", apply_ns, "-f", v2_dir, "--concurrency", str(min(conc, n_apply)),
             "--timeout", "5m", "-o", "json", "--kubeconfig", kc],
            stdout=open(os.path.join(scratch, "apply.json"), "w"), stderr=open(os.path.join(scratch, "apply.err"), "w")),
    }
    log(f"chaos: {n_life} lifecycles and {n_apply} applies started; {len(plan)} faults planned (seed {seed})")
    try:
        injected = inject(plan, procs, t0, cluster, proxy, log)
    except BaseException:
        for p in procs.values():  # interrupted: leave no client running
            p.kill()
        raise
    codes = {k: p.wait(timeout=1800) for k, p in procs.items()}
    wall = time.time() - t0
    log(f"chaos: both processes ended after {wall:.1f}s: {codes}")

    def load(fn: str) -> list[dict]:
        try:
            with open(os.path.join(scratch, fn)) as f:
                return json.load(f).get("deployments", [])
        except (OSError, ValueError):
            return []

    life, apps = load("life.json"), load("apply.json")
    ended_right, wrong_success, failures = 0, [], []
    for rep in life + apps:
        code = rep.get("exit_code")
        if code == 0:
            ended_right += 1
        elif rep.get("error"):
            ended_right += 1
            failures.append({"name": rep["name"], "exit_code": code, "error": rep["error"]})
        else:
            wrong_success.append({"name": rep.get("name"), "why": f"exit {code} without a cause"})
    # An apply's exit 0 is right only if its Deployments run the new image, ready.
    deps = api.get(f"/apis/apps/v1/namespaces/{apply_ns}/deployments").get("items", [])
    for rep in apps:
        if rep.get("exit_code") != 0:
            continue
        mine = [d for d in deps if (d["metadata"].get("labels") or {}).get("seldon-deployment-id") == rep["name"]]
        ok = bool(mine) and all(
            all(c.get("image", "").endswith(":1.4") for c in d["spec"]["template"]["spec"]["containers"]
                if c.get("name") == "classifier")
            and (d.get("status") or {}).get("availableReplicas") == d["spec"].get("replicas")
            == (d.get("status") or {}).get("updatedReplicas")
            for d in mine)
        if not ok:
            wrong_success.append({"name": rep["name"], "why": "exit 0 but its Deployments are not all the new version, ready"})
    # Nothing of the lifecycles is left once the garbage collector has had its time.
    left: list[str] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        sdeps = api.get(f"/apis/machinelearning.seldon.io/v1/namespaces/{life_ns}/seldondeployments").get("items", [])
        ds = api.get(f"/apis/apps/v1/namespaces/{life_ns}/deployments").get("items", [])
        left = [f"SeldonDeployment/{o['metadata']['name']}" for o in sdeps] + [f"Deployment/{o['metadata']['name']}" for o in ds]
        if not left:
            break
        time.sleep(2)
    proxy.cut()

    # What each fault kind cost.
    def span(rep: dict) -> Optional[tuple[float, float]]:
        ph = rep.get("phases") or []
        if not ph:
            return None
        s = parse_start(ph[0]["start"])
        e = max(parse_start(p["start"]) + p["duration_ms"] / 1000 for p in ph)
        return s, e

    spans = [(span(r), r) for r in life]
    spans = [(s, r) for s, r in spans if s]
    faults_abs = [dict(f, t=t0 + f["at"]) for f in injected]

    def hit(s: tuple[float, float], kinds: Optional[set[str]]) -> bool:
        return any(s[0] <= f["t"] <= s[1] and (kinds is None or f["kind"] in kinds) for f in faults_abs)

    clean = [s[1] - s[0] for s, _ in spans if not hit(s, None)]
    # The process-wide counters, sampled at each lifecycle's end.
    samples = sorted((e, r.get("watch") or {}) for (s0, e), r in spans)

    def counter_at(t: float, key: str) -> int:
        v = 0
        for e, w in samples:
            if e <= t:
                v = w.get(key, 0)
        return v

    per_kind = []
    for kind in FAULTS:
        fs = [f for f in faults_abs if f["kind"] == kind]
        walls = [s[1] - s[0] for s, _ in spans if hit(s, {kind})]
        row = {"kind": kind, "count": len(fs), "lifecycles_hit": len(walls)}
        for key in ("relists", "watch_errors", "retries"):
            row[key] = sum(max(0, counter_at(f["t"] + WINDOW, key) - counter_at(f["t"], key)) for f in fs)
        if walls and clean:
            row["extra_s"] = round(statistics.median(walls) - statistics.median(clean), 2)
        per_kind.append(row)
    last = (life or [{}])[-1].get("watch") or {}
    return {
        "seed": seed,
        "lifecycles": n_life,
        "applies": n_apply,
        "concurrency": conc,
        "wall_s": round(wall, 1),
        "exit_codes": codes,
        "reports": len(life) + len(apps),
        "ended_right": ended_right,
        "wrong_success": wrong_success,
        "failures": failures,
        "left_behind": left,
        "faults": injected,
        "per_kind": per_kind,
        "proxy_cuts": proxy.cuts,
        "median_clean_lifecycle_s": round(statistics.median(clean), 2) if clean else None,
        "lifecycle_phases": phase_times(life),
        "apply_phases": phase_times(apps),
        "lifecycle_process_watch": last,
        "apply_process_watch": (apps or [{}])[-1].get("watch") or {},
        "started": iso(t0),
    }


def render(c: dict) -> str:
    lines = ["## Chaos: lifecycles and applies while the cluster misbehaves", ""]
    lines.append(
        f"`bench/run --chaos` (seed {c['seed']}): one process ran {c['lifecycles']} lifecycles of the iris example "
        f"(`--concurrency {c['concurrency']}`), another {c['applies']} applies of a new image to live SeldonDeployments "
        f"(a rollout each, pods Ready after 2 s), both through a TCP proxy in front of the API server, for {c['wall_s']} s. "
        "Meanwhile, on a schedule drawn from the seed, the kube-apiserver was SIGKILLed and restarted every ~20 s, the "
        "operator restarted every ~30 s (KWOK, the kubelet stand-in, restarted after each apiserver restart: see "
        "`benchlib/chaos.py`), and every connection through the proxy cut every ~7 s.")
    lines.append("")
    total = c["reports"]
    lines.append(f"- **Ended right**: {c['ended_right']}/{c['lifecycles'] + c['applies']} (reports: {total}; "
                 f"exit codes of the processes: {c['exit_codes']}).")
    lines.append(f"- **Wrong successes**: {len(c['wrong_success'])}" +
                 (": " + "; ".join(f"{w['name']}: {w['why']}" for w in c["wrong_success"]) if c["wrong_success"] else "."))
    if c["failures"]:
        lines.append(f"- **Documented failures**: {len(c['failures'])}: " +
                     "; ".join(f"{f['name']} exit {f['exit_code']}: {f['error'][:160]}" for f in c["failures"][:5]))
    else:
        lines.append("- **Documented failures**: 0.")
    lines.append(f"- **Left behind** by the lifecycles (after up to 120 s for the garbage collector): {len(c['left_behind'])}" +
                 (": " + ", ".join(c["left_behind"][:10]) if c["left_behind"] else "."))
    lines.append(f"- Lifecycles hit by no fault took {c['median_clean_lifecycle_s']} s (median). "
                 f"Whole-process counters: lifecycles {c['lifecycle_process_watch']}, applies {c['apply_process_watch']}.")
    for label, key in (("lifecycle", "lifecycle_phases"), ("apply", "apply_phases")):
        if c.get(key):
            lines.append(f"- {label.capitalize()} phases, median / p90 / max: " + ", ".join(
                f"{name} {t['median_s']} / {t['p90_s']} / {t['max_s']} s" for name, t in c[key].items()) + ".")
    lines.append("- Where the time goes: the waits, not the client's writes (each under a second at the median). The "
                 "client's own part of the recovery is getting its watches back (the relists and retried requests "
                 "below); the rest is the cluster catching up: each operator restart starts over on every "
                 "SeldonDeployment through the operator's rate-limited client (its own \"client rate limiter Wait\" "
                 "errors show the limit), and the controllers and KWOK recover from each apiserver kill.")
    hit = max((r["lifecycles_hit"] for r in c["per_kind"]), default=0)
    lines.append(f"- With a fault every few seconds, a lifecycle that met one mostly met every kind (up to {hit} of "
                 f"{c['lifecycles']} met one kind, see \"lifecycles it hit\"), so the extra time below cannot be split "
                 "between the kinds. The lifecycles that met none ran after the fault schedule ended.")
    lines.append("")
    lines.append("| fault | times | lifecycles it hit | relists | watch errors | retried requests | extra time (median) |")
    lines.append("| :--- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in c["per_kind"]:
        extra = f"{r['extra_s']:+.2f} s" if "extra_s" in r else "–"
        lines.append(f"| {r['kind']} | {r['count']} | {r['lifecycles_hit']} | {r['relists']} | {r['watch_errors']} | "
                     f"{r['retries']} | {extra} |")
    lines.append("")
    lines.append(f"Relists, watch errors and retries: the lifecycle process's counters moved within {WINDOW:.0f} s after "
                 "each fault (overlapping faults are each charged). Extra time: median wall of the lifecycles that "
                 "overlapped a fault of that kind − median of those that overlapped none.")
    return "\n".join(lines) + "\n"
