"""bench/run: the seldon-deploy benchmark suite (see bench/README.md)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Optional

from . import analysis, audit, procs, report, selfreport, stats
from .kube import Api, ApiError, deploy_path, sdep_path

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
FIXTURES = os.path.join(BENCH, "fixtures")
N1, N2 = 1, 2  # the iris example starts at 1 replica; every peer scales it to 2 (the original hard-codes 2)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(argv: list[str], env: Optional[dict] = None, check: bool = True, timeout: float = 900, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, check=check, timeout=timeout, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def redact_hosts(s: str) -> str:
    return re.sub(r"https?://[^\s/]+(/\S*)?", "<proxy URL>", s)


# ---------------------------------------------------------------- machine and versions

def machine_info() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0.0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": mem,
            "kernel": f"Linux {platform.release()}"}


def mem_available_kb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- cluster

class Cluster:
    def __init__(self, state_dir: str):
        self.dir = state_dir
        self.env = dict(os.environ, SDEP_TESTENV_DIR=state_dir, SDEP_TESTENV_AUDIT="1")
        # One audit file for the whole run (the reader copes with rotation anyway).
        self.env.setdefault("SDEP_TESTENV_APISERVER_ARGS", "--audit-log-maxsize=100000")
        self.script = os.path.join(REPO, "testenv", "cluster")
        self.bin = ""
        self.kubeconfig = os.path.join(state_dir, "admin.kubeconfig")

    def cmd(self, *args: str, timeout: float = 900) -> str:
        return sh([self.script, *args], env=self.env, timeout=timeout).stdout

    def up(self) -> None:
        if os.path.isdir(self.dir) and not os.path.exists(os.path.join(self.dir, "logs", "audit.log")):
            log(f"{self.dir} holds a cluster without an audit log; recreating it")
            self.down()
        self.cmd("up")
        self.bin = re.search(r"bin:\s+(\S+)", self.cmd("env")).group(1)  # type: ignore[union-attr]

    def down(self) -> None:
        sh([self.script, "down"], env=self.env, check=False, timeout=120)

    def mint(self, user: str, out_dir: str) -> str:
        """A client-certificate kubeconfig for `user` (group system:masters), signed by the cluster's
        client CA. Like `testenv/cluster mint-user`, but an X.509 v3 certificate: mint-user's are v1,
        which rustls (hence seldon-deploy) rejects with UnsupportedCertVersion."""
        pki = os.path.join(self.dir, "pki")
        key, csr, crt = (os.path.join(out_dir, f"{user}.{x}") for x in ("key", "csr", "crt"))
        ext = os.path.join(out_dir, f"{user}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=clientAuth\n")
        sh(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={user}/O=system:masters",
            "-keyout", key, "-out", csr])
        sh(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki, "client-ca.crt"),
            "-CAkey", os.path.join(pki, "client-ca.key"), "-CAcreateserial", "-days", "7", "-extfile", ext, "-out", crt])
        os.chmod(key, 0o600)
        with open(self.kubeconfig) as f:
            admin = f.read()
        kc = re.sub(r"(?m)^(\s*)token:.*$", lambda m: f"{m.group(1)}client-certificate: {crt}\n{m.group(1)}client-key: {key}", admin)
        path = os.path.join(out_dir, f"{user}.kubeconfig")
        with open(path, "w") as f:
            f.write(kc)
        os.chmod(path, 0o600)
        return path

    @property
    def audit_path(self) -> str:
        return os.path.join(self.dir, "logs", "audit.log")

    def component_pids(self) -> dict[str, int]:
        out = {}
        pdir = os.path.join(self.dir, "pids")
        for fn in sorted(os.listdir(pdir)):
            try:
                with open(os.path.join(pdir, fn)) as f:
                    out[fn[:-4]] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        return out

    def cpu_snapshot(self) -> dict[str, float]:
        return {k: v for k, p in self.component_pids().items() if (v := procs.cpu_seconds(p)) is not None}


def ensure_namespace(api: Api, ns: str) -> None:
    try:
        api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    except ApiError as e:
        if e.status != 409:
            raise


def namespace_quiet(api: Api, ns: str) -> bool:
    for path in (sdep_path(ns), deploy_path(ns), f"/api/v1/namespaces/{ns}/pods"):
        if api.get(path + "?limit=1").get("items"):
            return False
    return True


def wait_quiet(api: Api, ns: str, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if namespace_quiet(api, ns):
            return True
        time.sleep(0.2)
    return False


def force_clean(api: Api, ns: str, timeout: float = 300) -> bool:
    """After a failed or timed-out run: delete what is left in the namespace."""
    try:
        api.request("DELETE", sdep_path(ns) + "?propagationPolicy=Foreground", ok=(200, 202, 404))
    except ApiError:
        pass
    return wait_quiet(api, ns, timeout)


def ensure_nodes(api: Api, count: int) -> None:
    """KWOK manages every Node (--manage-all-nodes): add fake ones until `count` exist."""
    have = len(api.get("/api/v1/nodes").get("items", []))
    for i in range(have, count):
        name = f"kwok-bench-{i}"
        api.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok"}},
            "spec": {},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}, ok=(200, 201, 409))
    deadline = time.time() + 90
    while time.time() < deadline:
        nodes = api.get("/api/v1/nodes").get("items", [])
        ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (n.get("status") or {}).get("conditions", []))
                 and not (n.get("spec") or {}).get("taints")]
        if len(ready) >= count:
            return
        time.sleep(0.5)
    log(f"warning: fewer than {count} fake nodes Ready")


# ---------------------------------------------------------------- manifests

def renamed_manifest(src: str, name: str, dst: str) -> str:
    """A copy of a fixture with metadata.name replaced (the fixtures name it 'sklearn')."""
    with open(src) as f:
        text = f.read()
    text = re.sub(r"(?m)^(metadata:\n  name: )sklearn$", r"\g<1>" + name, text, count=1)
    with open(dst, "w") as f:
        f.write(text)
    return dst


def manifest_json(kubectl: str, kubeconfig: str, src: str, dst: str) -> str:
    """The fixture as JSON (for the emulated original program, which must not need a YAML parser)."""
    out = sh([kubectl, "--kubeconfig", kubeconfig, "create", "--dry-run=client", "-o", "json", "-f", src]).stdout
    obj = json.loads(out)
    obj.get("metadata", {}).pop("namespace", None)  # added by kubectl from the context; not in the file
    with open(dst, "w") as f:
        json.dump(obj, f)
    return dst


# ---------------------------------------------------------------- peers

class Peer:
    key = ""
    label = ""
    user = ""

    def __init__(self, ctx: "Ctx"):
        self.ctx = ctx
        self.available = True
        self.reason = ""
        self.variant = ""
        self.kubeconfig = ""

    def setup(self) -> None:
        d = os.path.join(self.ctx.scratch, "users")
        os.makedirs(d, exist_ok=True)
        self.kubeconfig = self.ctx.cluster.mint(self.user, d)

    def env(self) -> dict:
        return dict(os.environ, KUBECONFIG=self.kubeconfig, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")

    def start_one(self, ns: str, manifest: str, tag: str) -> procs.Proc:
        raise NotImplementedError

    def start_many(self, ns: str, manifests: list[str], tag: str) -> tuple[list[procs.Proc], str]:
        """Default: one process per manifest, all at once."""
        return [self.start_one(ns, m, f"{tag}-{i}") for i, m in enumerate(manifests)], f"{len(manifests)} processes"

    def self_report(self, res: procs.ProcResult) -> dict:
        return {}

    def extra_rusage(self, tag: str) -> list[dict]:
        return []

    def paths(self, tag: str) -> tuple[str, str]:
        d = os.path.join(self.ctx.scratch, "runs")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"{tag}.out"), os.path.join(d, f"{tag}.err")


class Ours(Peer):
    key, label, user = "seldon-deploy", "seldon-deploy", "bench-seldon-deploy"

    def setup(self) -> None:
        super().setup()
        binary = self.ctx.args.binary or os.path.join(REPO, "target", "release", "seldon-deploy")
        if self.ctx.args.build and not self.ctx.args.binary:
            log("building seldon-deploy (cargo build --release)")
            r = sh(["cargo", "build", "--release", "--locked"], check=False, cwd=REPO, timeout=1800)
            if r.returncode != 0:
                r = sh(["cargo", "build", "--release"], check=False, cwd=REPO, timeout=1800)
            if r.returncode != 0:
                tail = "; ".join(l.strip() for l in r.stderr.splitlines() if l.startswith("error"))[:300]
                self.available, self.reason = False, f"`cargo build --release` failed ({tail or 'see log'})"
                return
        if not os.access(binary, os.X_OK):
            self.available, self.reason = False, f"no binary at {os.path.relpath(binary, REPO)}"
            return
        self.binary = binary
        self.version = sh([binary, "--version"], check=False).stdout.strip() or "?"
        helptext = sh([binary, "run", "--help"], check=False).stdout
        self.multi = "--concurrency" in helptext
        self.variant = "release build of this repository" if not self.ctx.args.binary else f"binary {binary}"

    def argv(self, ns: str, files: list[str]) -> list[str]:
        a = [self.binary, "run", "-n", ns]
        for f in files:
            a += ["-f", f]
        a += ["--replicas", str(N2), "--timeout", "10m", "-o", "json"]
        return a

    def start_one(self, ns: str, manifest: str, tag: str) -> procs.Proc:
        o, e = self.paths(tag)
        return procs.Proc(self.argv(ns, [manifest]), env=self.env(), stdout_path=o, stderr_path=e)

    def start_many(self, ns: str, manifests: list[str], tag: str) -> tuple[list[procs.Proc], str]:
        if not self.multi:
            return super().start_many(ns, manifests, tag)[0], f"{len(manifests)} processes (no multi-deployment mode yet)"
        o, e = self.paths(tag)
        argv = self.argv(ns, manifests) + ["--concurrency", str(len(manifests))]
        return [procs.Proc(argv, env=self.env(), stdout_path=o, stderr_path=e)], "1 process, --concurrency N"

    def self_report(self, res: procs.ProcResult) -> dict:
        return {"deployments": selfreport.tool_phases(res.stdout)}


class Kubectl(Peer):
    key, label, user = "kubectl", "kubectl script (recipe)", "bench-kubectl"
    mode = "recipe"

    def setup(self) -> None:
        super().setup()
        self.home = tempfile.mkdtemp(prefix=f"home-{self.key}-", dir=self.ctx.scratch)
        self.kubectl = os.path.join(self.ctx.cluster.bin, "kubectl")
        self.variant = f"peers/kubectl-lifecycle.sh {self.mode}"

    def env(self) -> dict:
        e = super().env()
        e["HOME"] = self.home  # its own discovery cache, warmed by the warm-up run
        return e

    def start_one(self, ns: str, manifest: str, tag: str) -> procs.Proc:
        o, e = self.paths(tag)
        env = self.env()
        env["KUBECTL"] = f"{self.ctx.rusage_exec} {o}.rusage {self.kubectl}"
        env["TIMEOUT"] = "600s"
        script = os.path.join(BENCH, "peers", "kubectl-lifecycle.sh")
        return procs.Proc(["bash", script, ns, manifest, str(N2), self.mode], env=env, stdout_path=o, stderr_path=e)

    def self_report(self, res: procs.ProcResult) -> dict:
        return {"marks": selfreport.bench_marks(res.stdout)}

    def extra_rusage(self, tag: str) -> list[dict]:
        return procs.read_rusage_file(self.paths(tag)[0] + ".rusage")


class KubectlStrict(Kubectl):
    key, label, user = "kubectl-strict", "kubectl script (strict)", "bench-kubectl-strict"
    mode = "strict"


class Original(Peer):
    key, label, user = "original", "original Go program", "bench-original"

    def setup(self) -> None:
        super().setup()
        self.home = tempfile.mkdtemp(prefix="home-original-", dir=self.ctx.scratch)
        os.makedirs(os.path.join(self.home, ".kube"))
        shutil.copy(self.kubeconfig, os.path.join(self.home, ".kube", "config"))
        r = sh([os.path.join(BENCH, "peers", "build-original.sh")], check=False, timeout=1800)
        msgs = [l for l in r.stderr.splitlines() if l.strip()]
        self.build_log = redact_hosts(" / ".join(msgs))
        if r.returncode == 0 and r.stdout.strip():
            self.binary = r.stdout.strip().splitlines()[-1]
            self.emulated = False
            try:
                with open(self.binary + ".source") as f:
                    src = redact_hosts(f.read().strip())
            except OSError:
                src = "?"
            self.variant = (f"the real program (commit e8c02d1, 2021-05-01, client-go v0.18.8), built from {src}; "
                            "its go.mod needed `replace vbom.ml/util => github.com/fvbommel/util` (dead import path) "
                            "and GONOSUMDB for the seldon-core operator pseudo-version (absent from the checksum database)")
        else:
            self.emulated = True
            self.json = manifest_json(os.path.join(self.ctx.cluster.bin, "kubectl"), self.ctx.cluster.kubeconfig,
                                      os.path.join(FIXTURES, "iris.yaml"), os.path.join(self.ctx.scratch, "iris.json"))
            self.label = "original (emulated)"
            self.variant = ("peers/original_emulated.py, a step-by-step Python re-implementation, because the "
                            f"program could not be built: {self.build_log}")

    def start_one(self, ns: str, manifest: str, tag: str) -> procs.Proc:
        o, e = self.paths(tag)
        if self.emulated:
            # In the run's scratch directory: never write into the repository's fixtures.
            js = os.path.join(self.ctx.scratch, os.path.basename(manifest)[:-5] + ".json")
            if not os.path.exists(js):
                manifest_json(os.path.join(self.ctx.cluster.bin, "kubectl"), self.ctx.cluster.kubeconfig, manifest, js)
            argv = [sys.executable, os.path.join(BENCH, "peers", "original_emulated.py"), self.kubeconfig, ns, js]
            return procs.Proc(argv, env=self.env(), stdout_path=o, stderr_path=e)
        env = self.env()
        env["HOME"] = self.home
        env.pop("KUBECONFIG", None)
        return procs.Proc([self.binary, "-namespace", ns, "-filename", manifest], env=env,
                          cwd=os.path.dirname(manifest), stdout_path=o, stderr_path=e)


PEER_CLASSES = [Ours, Kubectl, KubectlStrict, Original]


# ---------------------------------------------------------------- context and runs

class Ctx:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.scratch = os.path.abspath(os.path.join(BENCH, "out", f"run-{stamp}"))
        os.makedirs(self.scratch, exist_ok=True)
        self.cluster = Cluster(os.path.abspath(args.cluster_dir))
        self.api: Optional[Api] = None
        self.audit: Optional[audit.AuditLog] = None
        self.rusage_exec = os.path.join(self.scratch, "rusage-exec")
        self.watcher: Optional[subprocess.Popen] = None
        self.events_path = os.path.join(self.scratch, "watch-events.jsonl")
        self.ns_counter = 0
        self.run_id = datetime.now(timezone.utc).strftime("%H%M%S")

    def new_ns(self, label: str) -> str:
        self.ns_counter += 1
        # The run's time in the name: a kept cluster (--keep-cluster) may hold an earlier run's namespaces.
        ns = f"bench-{self.run_id}-{self.ns_counter:03d}-{label}"[:63]
        ensure_namespace(self.api, ns)  # type: ignore[arg-type]
        return ns

    def start_watcher(self) -> None:
        env = dict(os.environ, PYTHONPATH=BENCH)
        self.watcher = subprocess.Popen([sys.executable, "-m", "benchlib.watcher", "--kubeconfig", self.cluster.kubeconfig,
                                         "--out", self.events_path], env=env, cwd=BENCH,
                                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.scratch, "watcher.err"), "w"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(self.events_path):
                with open(self.events_path) as f:
                    if '"SYNCED"' in f.read():
                        return
            if self.watcher.poll() is not None:
                raise RuntimeError("the watcher exited; see " + os.path.join(self.scratch, "watcher.err"))
            time.sleep(0.1)
        raise RuntimeError("the watcher did not sync in 30 s")

    def stop_watcher(self) -> None:
        if self.watcher and self.watcher.poll() is None:
            self.watcher.terminate()
            try:
                self.watcher.wait(10)
            except subprocess.TimeoutExpired:
                self.watcher.kill()
                self.watcher.wait()

    def events(self) -> list[dict]:
        out = []
        with open(self.events_path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        out.sort(key=lambda e: e.get("t", 0))
        return out


def run_single(ctx: Ctx, peer: Peer, fixture: str, label: str, settle_timeout: float = 180) -> dict:
    ns = ctx.new_ns(f"{peer.key}-{label}")
    p = peer.start_one(ns, fixture, ns)
    return {"peer": peer.key, "ns": ns, "tag": ns, "proc": p}


def finish_single(ctx: Ctx, peer: Peer, run: dict, deadline: float, result: Optional[procs.ProcResult] = None) -> dict:
    p: procs.Proc = run.pop("proc")
    r = result or p.wait(deadline)
    run.update({"start": r.start, "end": r.end, "wall_s": r.end - r.start, "exit": r.exit, "timed_out": r.timed_out,
                "maxrss_kb": r.maxrss_kb, "cpu_s": r.cpu_s})
    extra = peer.extra_rusage(run["tag"])
    run["processes"] = len(extra) + 1 if extra else 1
    if extra:
        run["maxrss_kb"] = max([r.maxrss_kb] + [x["maxrss_kb"] for x in extra])
    run["sum_rss_kb"] = sum(x["maxrss_kb"] for x in extra) if extra else r.maxrss_kb
    run["self"] = peer.self_report(r)
    if r.exit != 0:
        run["stderr_tail"] = r.stderr[-600:]
    return run


def quiesce(ctx: Ctx, ns: str, timeout: float) -> None:
    if not wait_quiet(ctx.api, ns, timeout):  # type: ignore[arg-type]
        log(f"{ns} not empty after {timeout:.0f} s; cleaning up")
        force_clean(ctx.api, ns)  # type: ignore[arg-type]


def attach_audit_and_lags(ctx: Ctx, runs: list[dict], reqs: list[audit.Request], tl: analysis.Timeline) -> None:
    by_user: dict[str, list[audit.Request]] = {}
    for r in reqs:
        by_user.setdefault(r.user, []).append(r)
    users = {p.key: p.user for p in ctx.peers}
    for run in runs:
        user = users[run["peer"]]
        # A request reaches the apiserver before its client exits: the window is the process's life.
        mine = audit.select(by_user.get(user, []), start=run["start"] - 0.05, end=run["end"] + 0.05)
        run["requests"] = audit.count_by_verb(mine)
        acts = audit.sdep_actions(mine, user=user, namespace=run["ns"])
        run["actions"] = acts
        names = tl.names(run["ns"])
        if len(names) != 1:
            run["lag_error"] = f"expected one SeldonDeployment in {run['ns']}, saw {names}"
            continue
        first = lambda xs: xs[0] if xs else None  # noqa: E731
        run.update(analysis.lifecycle_lags(tl, run["ns"], names[0], n1=N1, n2=N2, create=first(acts["create"]),
                                           scale=first(acts["scale"]), delete=first(acts["delete"]), done=run["end"]))
        # When the peer itself says its wait ended, as opposed to when its next request arrived.
        ends = self_reported_ends(run.get("self") or {})
        for phase in ("ready1", "ready2", "gone"):
            if ends.get(phase) is not None:
                run[f"self_lag_{phase}"] = analysis.lag(ends[phase], run.get(f"{phase}_at"))
        # Against the moment the SDep's own status confirmed N (self-reported end, else the next request).
        moved = {"ready1": ends.get("ready1") or first(acts["scale"]), "ready2": ends.get("ready2") or first(acts["delete"])}
        for phase in ("ready1", "ready2"):
            run[f"clag_{phase}"] = analysis.lag(moved[phase], run.get(f"{phase}c_at"))


def self_reported_ends(self_report: dict) -> dict:
    """{ready1, ready2, gone: epoch} from kubectl's BENCH marks or seldon-deploy's JSON phases."""
    marks = self_report.get("marks")
    if marks:
        return {"ready1": marks.get("ready1"), "ready2": marks.get("ready2"), "gone": marks.get("gone")}
    deps = self_report.get("deployments") or []
    if len(deps) != 1:
        return {}
    by_name = {p.get("name"): p.get("end") for p in deps[0]["phases"]}
    return {"ready1": by_name.get("wait-ready"), "ready2": by_name.get("wait-scaled"), "gone": by_name.get("delete")}


def exit_after_end(run: dict, phase: str) -> Optional[float]:
    """From the end of the peer's last step (its own report) to its process exit: what it spends
    after its job is done (seldon-deploy: listening for the last Events)."""
    lag, own = run.get(f"lag_{phase}"), run.get(f"self_lag_{phase}")
    return None if lag is None or own is None else lag - own


def summarize_runs(runs: list[dict], keys: list[str]) -> dict:
    out: dict = {}
    for key in keys:
        rs = [r for r in runs if r["peer"] == key]
        if not rs:
            continue
        ok = [r for r in rs if r.get("exit") == 0]
        sm = {"runs": len(rs), "ok": len(ok)}
        for r in ok:
            r["exit_after_end"] = exit_after_end(r, "gone")
        for f in ("wall_s", "lag_ready1", "lag_ready2", "lag_gone", "maxrss_kb", "sum_rss_kb", "processes", "cpu_s",
                  "self_lag_ready1", "self_lag_ready2", "self_lag_gone", "clag_ready1", "clag_ready2", "exit_after_end"):
            sm[f] = stats.summarize(r.get(f) for r in ok)
        for ph in ("ready1", "ready2", "gone"):
            sm[f"early_{ph}"] = sum(1 for r in ok if r.get(f"early_{ph}"))
        sm["requests_total"] = stats.summarize((r.get("requests") or {}).get("total") for r in ok)
        verbs = sorted({v for r in ok for v in (r.get("requests") or {}) if v != "total"})
        sm["requests_median"] = {v: stats.summarize((r.get("requests") or {}).get(v, 0) for r in ok)["median"] for v in verbs}
        out[key] = sm
    return out


def phase_single(ctx: Ctx, peers: list[Peer], reps: int) -> list[dict]:
    runs = []
    iris = os.path.join(FIXTURES, "iris.yaml")
    log("warm-up: one lifecycle per peer (not counted)")
    for peer in peers:
        run = run_single(ctx, peer, iris, "warmup")
        run = finish_single(ctx, peer, run, time.time() + 300)
        if run["exit"] != 0:
            log(f"warm-up of {peer.key} failed (exit {run['exit']}): {run.get('stderr_tail', '')[-300:]}")
        quiesce(ctx, run["ns"], 120)
    for rep in range(reps):
        for peer in peers:
            log(f"lifecycle {rep + 1}/{reps}: {peer.key}")
            run = run_single(ctx, peer, iris, f"r{rep}")
            run = finish_single(ctx, peer, run, time.time() + 300)
            run["rep"] = rep
            if run["exit"] != 0:
                log(f"{peer.key} exited {run['exit']}: {run.get('stderr_tail', '')[-300:]}")
            runs.append(run)
            if run["exit"] == 0:
                quiesce(ctx, run["ns"], 120)
            else:
                force_clean(ctx.api, run["ns"])  # type: ignore[arg-type]
            time.sleep(0.3)
    return runs


def phase_slow(ctx: Ctx, peers: list[Peer], reps: int) -> list[dict]:
    runs = []
    slow = os.path.join(FIXTURES, "iris-slow.yaml")
    for rep in range(reps):
        log(f"30 s ready-delay lifecycles, set {rep + 1}/{reps} (peers side by side)")
        started = [(peer, run_single(ctx, peer, slow, f"slow{rep}")) for peer in peers]
        results = procs.wait_all([run["proc"] for _, run in started], time.time() + 600, interval=0.005)
        for (peer, run), res in zip(started, results):
            run = finish_single(ctx, peer, run, 0, res)
            run["rep"] = rep
            if run["exit"] != 0:
                log(f"{peer.key} exited {run['exit']}: {run.get('stderr_tail', '')[-300:]}")
            runs.append(run)
        for _, run in started:
            quiesce(ctx, run["ns"], 180)
    return runs


def phase_scale(ctx: Ctx, peers: list[Peer], sizes: list[int], single_summary: dict) -> tuple[list[dict], list[str]]:
    results: list[dict] = []
    notes: list[str] = []
    reserve_kb = ctx.args.mem_reserve_gib * 1024 * 1024
    iris = os.path.join(FIXTURES, "iris.yaml")
    prev: dict[str, dict] = {}
    for n in sizes:
        ensure_nodes(ctx.api, max(3, -(-2 * n * 11 // 10 // 100)))  # type: ignore[arg-type]
        for peer in peers:
            rec: dict = {"n": n, "peer": peer.key}
            p_rec = prev.get(peer.key)
            if p_rec is not None and (p_rec.get("skipped") or p_rec.get("ok") != p_rec["n"]
                                      or p_rec.get("wall_s", 0) > ctx.args.scale_max_prev_wall):
                rec["skipped"] = (f"N={p_rec['n']} was skipped, failed or took over {ctx.args.scale_max_prev_wall:.0f} s")
                log(f"scale N={n} {peer.key}: skipped ({rec['skipped']})")
                results.append(rec)
                prev[peer.key] = rec
                continue
            # Memory guard: the per-process peak from the single runs, times the processes at once.
            sm = single_summary.get(peer.key) or {}
            per_proc = (sm.get("maxrss_kb") or {}).get("median") or 60 * 1024
            concurrent = 1 if (isinstance(peer, Ours) and peer.multi) else n
            need_kb = per_proc * 1.15 * concurrent
            how_est = f"{concurrent} × {per_proc / 1024:.0f} MB"
            if p_rec is not None and p_rec.get("client_rss_kb"):
                # Extrapolate linearly from the previous N (a floor if it grows faster).
                ext = p_rec["client_rss_kb"] * n / p_rec["n"]
                if ext > need_kb:
                    need_kb, how_est = ext, f"{p_rec['client_rss_kb'] / 1024:.0f} MB at N={p_rec['n']}, × {n / p_rec['n']:.0f}"
            avail = mem_available_kb()
            cap_kb = int(min(avail - reserve_kb, ctx.args.client_mem_cap_gib * 1024 * 1024))
            if need_kb > cap_kb:
                rec["skipped"] = (f"needs ~{need_kb / 1024 / 1024:.1f} GiB of client memory ({how_est}); "
                                  f"cap {max(0, cap_kb) / 1024 / 1024:.1f} GiB")
                log(f"scale N={n} {peer.key}: skipped ({rec['skipped']})")
                results.append(rec)
                prev[peer.key] = rec
                continue
            ns = ctx.new_ns(f"{peer.key}-n{n}")
            mdir = os.path.join(ctx.scratch, "manifests", ns)
            os.makedirs(mdir, exist_ok=True)
            manifests = [renamed_manifest(iris, f"iris-{i:04d}", os.path.join(mdir, f"iris-{i:04d}.yaml")) for i in range(n)]
            log(f"scale N={n}: {peer.key}")
            cpu0 = ctx.cluster.cpu_snapshot()
            w0 = procs.cpu_seconds(ctx.watcher.pid) if ctx.watcher else None
            t0 = time.time()
            plist, how = peer.start_many(ns, manifests, ns)
            def kill_all(plist=plist) -> None:
                for p in plist:
                    try:
                        os.killpg(p.pid, 9)
                    except ProcessLookupError:
                        pass
            sampler = procs.RssSampler([p.pid for p in plist], limit_kb=cap_kb, on_limit=kill_all)
            sampler.start()
            deadline = t0 + ctx.args.scale_timeout_base + ctx.args.scale_timeout_per * n
            res = procs.wait_all(plist, deadline)
            t1 = time.time()
            cpu1 = ctx.cluster.cpu_snapshot()
            w1 = procs.cpu_seconds(ctx.watcher.pid) if ctx.watcher else None
            rec["watcher_cpu_s"] = (w1 - w0) if (w0 is not None and w1 is not None) else None
            rec["client_rss_kb"] = sampler.stop()
            if sampler.over_limit:
                rec["killed"] = f"client RSS passed the {cap_kb / 1024 / 1024:.1f} GiB cap; killed"
                log(f"scale N={n} {peer.key}: {rec['killed']}")
            rec["mode"] = how
            rec["start"], rec["end"], rec["wall_s"] = t0, t1, t1 - t0
            rec["timed_out"] = any(r.timed_out for r in res)
            rec["client_cpu_s"] = sum(r.cpu_s for r in res)
            rec["ns"] = ns
            if len(res) == 1 and n > 1:
                docs = selfreport.tool_phases(res[0].stdout)
                rec["ok"] = n if res[0].exit == 0 else sum(
                    1 for d in docs if d["phases"] and all(p.get("outcome") in ("ok", "success", "succeeded", None) for p in d["phases"]))
                rec["exit"] = res[0].exit
                if res[0].exit != 0:
                    rec["stderr_tail"] = res[0].stderr[-600:]
            else:
                rec["ok"] = sum(1 for r in res if r.exit == 0)
                bad = [r for r in res if r.exit != 0]
                if bad:
                    rec["stderr_tail"] = bad[0].stderr[-600:]
            wall = max(t1 - t0, 1e-6)
            rec["cluster_cpu_s"] = {k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0}
            rec["cluster_cpu_pct"] = {k: 100 * v / wall for k, v in rec["cluster_cpu_s"].items()}
            rec["cluster_cpu_total_pct"] = sum(rec["cluster_cpu_pct"].values())
            log(f"scale N={n} {peer.key}: {rec['ok']}/{n} ok in {wall:.1f} s; client RSS {rec['client_rss_kb'] / 1024:.0f} MB; "
                f"cluster CPU {rec['cluster_cpu_total_pct']:.0f}%")
            results.append(rec)
            prev[peer.key] = rec
            if rec["ok"] == n:
                quiesce(ctx, ns, 600)
            else:  # killed or failed clients leave SeldonDeployments behind
                force_clean(ctx.api, ns, 600)  # type: ignore[arg-type]
            time.sleep(1)
    return results, notes


def scale_lags(rec: dict, mine: list[audit.Request], user: str, tl: analysis.Timeline, ctx: Ctx) -> None:
    """Per-SDep detection lags and operator status delay of one scale run (medians over the N)."""
    per_name = audit.sdep_actions_by_name(mine, user=user, namespace=rec["ns"])
    own: dict[str, dict] = {}
    out_path = os.path.join(ctx.scratch, "runs", f"{rec['ns']}.out")
    if rec["peer"] == "seldon-deploy" and os.path.exists(out_path):
        with open(out_path, errors="replace") as f:
            for d in selfreport.tool_phases(f.read()):
                own[d["name"]] = self_reported_ends({"deployments": [d]})
    l1, l2, delay = [], [], []
    early = {"ready1": 0, "ready2": 0}
    for name, acts in per_name.items():
        first = lambda xs: xs[0] if xs else None  # noqa: E731
        lg = analysis.lifecycle_lags(tl, rec["ns"], name, n1=N1, n2=N2, create=first(acts["create"]) or rec["start"],
                                     scale=first(acts["scale"]), delete=first(acts["delete"]), done=None)
        ends = own.get(name) or {}
        m1, m2 = ends.get("ready1") or first(acts["scale"]), ends.get("ready2") or first(acts["delete"])
        l1.append(analysis.lag(m1, lg["ready1_at"]))
        l2.append(analysis.lag(m2, lg["ready2_at"]))
        for ph, m, c in (("ready1", m1, lg["ready1_at"]), ("ready2", m2, lg["ready2_at"])):
            if analysis.is_early(m, c):
                early[ph] += 1
        delay.append(analysis.lag(lg["ready2c_at"], lg["ready2_at"]))
    rec["lag_ready1"], rec["lag_ready2"] = stats.summarize(l1), stats.summarize(l2)
    rec["operator_status_delay"] = stats.summarize(delay)
    rec["early_ready1"], rec["early_ready2"] = early["ready1"], early["ready2"]
    rec["lag_sdeps"] = len(per_name)


# ---------------------------------------------------------------- update: ship a new version of a live SDep

UPDATE_V1 = os.path.join(FIXTURES, "update-v1.yaml")
UPDATE_V2 = os.path.join(FIXTURES, "update-v2.yaml")


class UpdateOurs(Ours):
    key, label, user = "seldon-deploy", "seldon-deploy apply", "bench-upd-seldon-deploy"

    def setup(self) -> None:
        super().setup()
        if self.available and sh([self.binary, "apply", "--help"], check=False).returncode != 0:
            self.available, self.reason = False, "this build has no `apply` command"
        self.variant = f"`seldon-deploy apply -n NS -f update-v2.yaml --timeout 5m -o json` ({self.variant})"

    def argv(self, ns: str, files: list[str]) -> list[str]:
        return [self.binary, "apply", "-n", ns, "-f", files[0], "--timeout", "5m", "-o", "json"]

    def own_end(self, run: dict) -> Optional[float]:
        """The end of the wait phase that follows `apply` (`wait-rollout`; some builds call it `wait-ready`)."""
        deps = (run.get("self") or {}).get("deployments") or []
        if len(deps) != 1:
            return None
        names = [p.get("name") or "" for p in deps[0]["phases"]]
        for i, nm in enumerate(names[:-1]):
            if nm == "apply" and names[i + 1].startswith("wait"):
                return deps[0]["phases"][i + 1].get("end")
        return None


class UpdateKubectl(Kubectl):
    key, label, user = "kubectl-wait", "kubectl apply + wait --for=condition=ready", "bench-upd-kubectl-wait"
    mode = "wait"

    def setup(self) -> None:
        super().setup()
        self.variant = f"peers/kubectl-update.sh {self.mode}"

    def start_one(self, ns: str, manifest: str, tag: str) -> procs.Proc:
        o, e = self.paths(tag)
        env = self.env()
        env["KUBECTL"] = f"{self.ctx.rusage_exec} {o}.rusage {self.kubectl}"
        env["TIMEOUT"] = "300s"
        script = os.path.join(BENCH, "peers", "kubectl-update.sh")
        return procs.Proc(["bash", script, ns, manifest, self.mode], env=env, stdout_path=o, stderr_path=e)

    def own_end(self, run: dict) -> Optional[float]:
        return ((run.get("self") or {}).get("marks") or {}).get("ready")


class UpdateKubectlRollout(UpdateKubectl):
    key, label, user = "kubectl-rollout", "kubectl apply + rollout status (each Deployment)", "bench-upd-kubectl-rollout"
    mode = "rollout"


UPDATE_PEER_CLASSES = [UpdateOurs, UpdateKubectl, UpdateKubectlRollout]


def manifest_doc(ctx: Ctx, path: str) -> dict:
    """A YAML fixture as a JSON object, through kubectl (the harness has no YAML parser)."""
    out = sh([os.path.join(ctx.cluster.bin, "kubectl"), "--kubeconfig", ctx.cluster.kubeconfig, "create",
              "--dry-run=client", "-o", "json", "-f", path]).stdout
    return json.loads(out)


def manifest_version(doc: dict) -> tuple[int, dict[str, str]]:
    """(replicas, {container: image}) of a one-predictor, one-component manifest: what every
    Deployment of the SDep must run once the rollout is complete."""
    spec = doc["spec"]
    preds = spec["predictors"]
    if len(preds) != 1 or len(preds[0].get("componentSpecs") or []) != 1:
        raise ValueError("the update fixtures must have one predictor with one componentSpec")
    cs = preds[0]["componentSpecs"][0]
    n = cs.get("replicas") or preds[0].get("replicas") or spec.get("replicas") or 1
    images = {c["name"]: c["image"] for c in cs["spec"]["containers"] if c.get("image")}
    return int(n), images


def live_rollout(api: Api, ns: str, name: str) -> tuple[Optional[dict], dict[str, dict]]:
    """The SDep and its Deployments now, in the watcher's record format (for analysis.rollout_complete)."""
    from .watcher import deployment_fields, sdep_fields
    try:
        sd: Optional[dict] = api.get(sdep_path(ns, name))
    except ApiError as e:
        if e.status != 404:
            raise
        sd = None
    items = api.get(deploy_path(ns) + f"?labelSelector=seldon-deployment-id%3D{name}").get("items", [])
    deps = {d["metadata"]["name"]: deployment_fields(d) for d in items}
    return (sdep_fields(sd) if sd else None), {k: v for k, v in deps.items() if v.get("sdep") == name}


def wait_rollout(ctx: Ctx, ns: str, name: str, expected: Optional[dict], n: int, images: dict[str, str],
                 timeout: float) -> Optional[dict]:
    """Poll (the harness, as admin; not measured) until the rollout to `images` at n is complete
    and the SDep's own status says every Deployment is at n. expected=None: the Deployments
    found. Returns the expectation that held, or None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sd, deps = live_rollout(ctx.api, ns, name)  # type: ignore[arg-type]
        want = expected or {d: {"replicas": n, "images": images} for d in deps}
        entries = (sd or {}).get("deps") or {}
        if (analysis.rollout_complete(sd, deps, want) and set(entries) == set(want)
                and all(e.get("replicas") == n and e.get("available") == n for e in entries.values())):
            return want
        time.sleep(0.2)
    return None


def phase_update(ctx: Ctx, peers: list[Peer], reps: int) -> dict:
    """v1 live and ready in a fresh namespace per run (created with `kubectl apply` as admin, not
    measured), then the peer ships v2: new image, pods Ready 10 s after they start. Interleaved,
    one run at a time; one warm-up run per peer first (kubectl's discovery cache)."""
    kubectl = os.path.join(ctx.cluster.bin, "kubectl")
    admin_env = dict(os.environ, HOME=os.path.join(ctx.scratch, "home-admin"), NO_PROXY="127.0.0.1,localhost",
                     no_proxy="127.0.0.1,localhost")
    d1, d2 = manifest_doc(ctx, UPDATE_V1), manifest_doc(ctx, UPDATE_V2)
    name = d1["metadata"]["name"]
    n1, img1 = manifest_version(d1)
    n2, img2 = manifest_version(d2)
    runs: list[dict] = []

    def one(peer: Peer, label: str) -> Optional[dict]:
        ns = ctx.new_ns(f"upd-{peer.key}-{label}")
        r = sh([kubectl, "--kubeconfig", ctx.cluster.kubeconfig, "-n", ns, "apply", "-f", UPDATE_V1], env=admin_env,
               check=False)
        if r.returncode != 0:
            log(f"update {label} {peer.key}: creating v1 failed: {r.stderr.strip()[-300:]}")
            return None
        live = wait_rollout(ctx, ns, name, None, n1, img1, 180)
        if live is None:
            log(f"update {label} {peer.key}: v1 not ready in 180 s")
            force_clean(ctx.api, ns)  # type: ignore[arg-type]
            return None
        time.sleep(1.0)  # let the operator's last status writes for v1 pass: a quiet start
        run = {"peer": peer.key, "ns": ns, "tag": ns, "name": name, "proc": peer.start_one(ns, UPDATE_V2, ns)}
        run = finish_single(ctx, peer, run, time.time() + 400)
        if run["exit"] != 0:
            log(f"update {label} {peer.key} exited {run['exit']}: {run.get('stderr_tail', '')[-300:]}")
        # Same Deployments as v1 (the update changes no component), now with v2's images.
        run["expected"] = {d: {"replicas": n2, "images": img2} for d in live}
        # Whatever the peer did, let the rollout finish, so that the watcher sees the truth.
        if wait_rollout(ctx, ns, name, run["expected"], n2, img2, 180) is None:
            log(f"update {label} {peer.key}: the rollout did not complete in 180 s after the peer exited")
        time.sleep(0.5)
        force_clean(ctx.api, ns)  # type: ignore[arg-type]
        return run

    log("update: one warm-up run per peer (not counted)")
    for peer in peers:
        one(peer, "warmup")
    for rep in range(reps):
        for peer in peers:
            log(f"update {rep + 1}/{reps}: {peer.key}")
            run = one(peer, f"r{rep}")
            if run is not None:
                run["rep"] = rep
                runs.append(run)
            time.sleep(0.3)
    return {"runs": runs, "fixture": {"name": name, "v1": {"replicas": n1, "images": img1},
                                      "v2": {"replicas": n2, "images": img2}}}


def attach_update(runs: list[dict], peers: list[Peer], reqs: list[audit.Request], events: list[dict]) -> None:
    by_user: dict[str, list[audit.Request]] = {}
    for r in reqs:
        by_user.setdefault(r.user, []).append(r)
    by_ns: dict[str, list[dict]] = {}
    for ev in events:
        by_ns.setdefault(ev.get("ns", ""), []).append(ev)
    pk = {p.key: p for p in peers}
    for run in runs:
        peer = pk[run["peer"]]
        mine = audit.select(by_user.get(peer.user, []), start=run["start"] - 0.05, end=run["end"] + 0.05)
        run["requests"] = audit.count_by_verb(mine)
        writes = audit.sdep_actions(mine, user=peer.user, namespace=run["ns"])["scale"]
        run["update_at"] = writes[0] if writes else None
        own = peer.own_end(run)  # type: ignore[attr-defined]
        run.update(analysis.update_lags(by_ns.get(run["ns"], []), run["ns"], run["name"], run["expected"],
                                        update=run["update_at"], done=run["end"], own=own))


def summarize_update(runs: list[dict], keys: list[str]) -> dict:
    out: dict = {}
    for key in keys:
        rs = [r for r in runs if r["peer"] == key]
        if not rs:
            continue
        ok = [r for r in rs if r.get("exit") == 0]
        sm: dict = {"runs": len(rs), "ok": len(ok), "early_update": sum(1 for r in ok if r.get("early_update")),
                    "early_pods": sum(1 for r in ok if r.get("early_pods"))}
        for r in ok:
            r["exit_after_end"] = exit_after_end(r, "update")
        for f in ("wall_s", "lag_update", "self_lag_update", "rollout_s", "status_delay", "clag_update", "maxrss_kb",
                  "sum_rss_kb", "processes", "cpu_s", "exit_after_end"):
            sm[f] = stats.summarize(r.get(f) for r in ok)
        sm["requests_total"] = stats.summarize((r.get("requests") or {}).get("total") for r in ok)
        verbs = sorted({v for r in ok for v in (r.get("requests") or {}) if v != "total"})
        sm["requests_median"] = {v: stats.summarize((r.get("requests") or {}).get(v, 0) for r in ok)["median"] for v in verbs}
        out[key] = sm
    return out


def tool_versions(ctx: Ctx, peers: list[Peer]) -> dict:
    v: dict = {"python": platform.python_version()}
    text = open(ctx.cluster.script).read()
    for key, var in (("kubernetes", "K8S_VERSION"), ("etcd", "ETCD_VERSION"), ("kwok", "KWOK_VERSION"), ("seldon", "SELDON_VERSION")):
        m = re.search(rf"^{var}=(\S+)", text, re.M)
        v[key] = m.group(1) if m else "?"
    kc = sh([os.path.join(ctx.cluster.bin, "kubectl"), "version", "--client", "-o", "json"], check=False).stdout
    try:
        v["kubectl"] = json.loads(kc)["clientVersion"]["gitVersion"] + " (built by testenv, same version as the apiserver)"
    except (ValueError, KeyError):
        v["kubectl"] = "?"
    for p in peers:
        if isinstance(p, Ours):
            v["seldon-deploy"] = (getattr(p, "version", "?") + f" (git {git_rev()})") if p.available else f"not measured: {p.reason}"
        if isinstance(p, Original):
            v["original"] = p.variant
    return v


def git_rev() -> str:
    r = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False)
    dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock"], check=False).stdout.strip()
    return r.stdout.strip() + ("+local changes" if dirty else "")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description="seldon-deploy benchmark suite")
    ap.add_argument("--quick", action="store_true", help="3 repetitions, N=10 only for scale (a few minutes)")
    ap.add_argument("--out", default=BENCH, help="where results.json and RESULTS.md go (default: bench/)")
    ap.add_argument("--reps", type=int, help="lifecycle repetitions per peer (quick 3, full 5)")
    ap.add_argument("--slow-reps", type=int, help="30 s ready-delay lifecycles per peer (quick 1, full 2)")
    ap.add_argument("--scale", help="comma-separated N for the scale runs (quick 10; full 10,100,500,1000)")
    ap.add_argument("--peers", default="seldon-deploy,kubectl,kubectl-strict,original")
    ap.add_argument("--update-peers", default="seldon-deploy,kubectl-wait,kubectl-rollout",
                    help="peers of the update section")
    ap.add_argument("--update-reps", type=int, help="update runs per peer (default: --reps; 0 skips the section)")
    ap.add_argument("--only", choices=["update"],
                    help="run only this section and merge it into OUT/results.json (the other sections are kept)")
    ap.add_argument("--no-build", dest="build", action="store_false", help="use target/release/seldon-deploy as it is")
    ap.add_argument("--binary", help="measure this seldon-deploy binary (no build) instead of target/release/seldon-deploy")
    ap.add_argument("--cluster-dir", default=os.path.join(REPO, ".testenv-bench"))
    ap.add_argument("--keep-cluster", action="store_true", help="leave the benchmark cluster running")
    ap.add_argument("--mem-reserve-gib", type=float, default=6.0,
                    help="scale runs are skipped when they would leave less memory available than this")
    ap.add_argument("--client-mem-cap-gib", type=float, default=10.0,
                    help="scale runs whose clients would need more are skipped; clients passing it are killed")
    ap.add_argument("--scale-timeout-base", type=float, default=120.0)
    ap.add_argument("--scale-timeout-per", type=float, default=1.5, help="seconds per SeldonDeployment")
    ap.add_argument("--scale-max-prev-wall", type=float, default=420.0,
                    help="skip a peer at the next N when its previous N took longer than this")
    ap.add_argument("--chaos", action="store_true",
                    help="only the chaos section (lifecycles and applies while the API server, the operator and the "
                         "connections fail on a seeded schedule), merged into OUT/results.json")
    ap.add_argument("--chaos-lifecycles", type=int, default=200)
    ap.add_argument("--chaos-applies", type=int, default=50)
    ap.add_argument("--chaos-concurrency", type=int, default=20)
    ap.add_argument("--chaos-seed", type=int, default=19)
    ap.add_argument("--chaos-horizon", type=float, default=1800.0, help="seconds of fault schedule to draw")
    ap.add_argument("--soak", action="store_true",
                    help="a memory soak instead (its own cluster, .testenv-soak): one `seldon-deploy run` process runs "
                         "lifecycles back to back, its RSS sampled; merged into OUT/results.json, plot OUT/soak-rss.png")
    ap.add_argument("--soak-minutes", type=float, default=30.0)
    ap.add_argument("--soak-concurrency", type=int, default=20)
    ap.add_argument("--soak-sample-s", type=float, default=60.0, help="seconds between RSS samples")
    ap.add_argument("--soak-manifests", type=int,
                    help="manifests to generate, no calibration run (default: 1.5 × what a calibration run's "
                         "median lifecycle implies for the duration)")
    args = ap.parse_args(argv)
    if args.chaos:
        return main_chaos(args)
    if args.soak:
        return main_soak(args)
    reps = args.reps or (3 if args.quick else 5)
    slow_reps = args.slow_reps if args.slow_reps is not None else (1 if args.quick else 2)
    sizes = [int(x) for x in (args.scale or ("10" if args.quick else "10,100,500,1000")).split(",") if x.strip()]
    update_reps = args.update_reps if args.update_reps is not None else reps
    command = "bench/run" + (" --quick" if args.quick else "")
    only_command = "bench/run " + " ".join(argv if argv is not None else sys.argv[1:])

    t_start = time.time()
    # Run the clean-up below on SIGTERM too, and on SIGINT even when started in the background.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx = Ctx(args)
    log(f"scratch: {ctx.scratch}")
    sh(["cc", "-O2", "-o", ctx.rusage_exec, os.path.join(BENCH, "tools", "rusage-exec.c")])
    procs.RUSAGE_EXEC = ctx.rusage_exec
    try:
        log(f"starting the benchmark cluster in {ctx.cluster.dir}")
        ctx.cluster.up()
        ctx.api = Api(ctx.cluster.kubeconfig)
        ctx.audit = audit.AuditLog(ctx.cluster.audit_path)
        wanted = [k.strip() for k in args.peers.split(",")]
        all_peers = [] if args.only else [c(ctx) for c in PEER_CLASSES if c.key in wanted]
        upd_wanted = [k.strip() for k in args.update_peers.split(",")] if update_reps > 0 else []
        upd_all = [c(ctx) for c in UPDATE_PEER_CLASSES if c.key in upd_wanted]
        for p in all_peers + upd_all:
            log(f"setting up peer {p.key}" + (" (update)" if p in upd_all else ""))
            p.setup()
            if not p.available:
                log(f"peer {p.key} not available: {p.reason}")
        peers = [p for p in all_peers if p.available]
        upd_peers = [p for p in upd_all if p.available]
        ctx.peers = all_peers  # type: ignore[attr-defined]  # the update peers reuse keys: kept apart
        audit_offset = ctx.audit.mark()
        ctx.start_watcher()

        update = run_update_section(ctx, upd_all, upd_peers, update_reps, only_command if args.only else command)
        if args.only:
            ctx.stop_watcher()
            path = os.path.join(args.out, "results.json")
            if os.path.exists(path):
                with open(path) as f:
                    results = json.load(f)
            else:
                results = {"meta": {"command": only_command, "date": update["meta"]["date"], "mode": f"only {args.only}",
                                    "reps": update_reps, "duration_s": time.time() - t_start,
                                    "machine": machine_info(), "versions": tool_versions(ctx, upd_all),
                                    "fixture": "see the section", "notes": []},
                           "peers": {}}
            results["update"] = update
            write_results(results, args.out)
            log(f"merged the update section into {path} in {time.time() - t_start:.0f} s")
            return 0

        single_runs = phase_single(ctx, peers, reps)
        slow_runs = phase_slow(ctx, peers, slow_reps) if slow_reps > 0 else []
        time.sleep(1.0)
        tl = analysis.Timeline().feed(ctx.events())
        reqs = ctx.audit.read_from(audit_offset)
        attach_audit_and_lags(ctx, single_runs + slow_runs, reqs, tl)
        single_summary = summarize_runs(single_runs, [p.key for p in peers])
        slow_summary = summarize_runs(slow_runs, [p.key for p in peers])

        scale_offset = ctx.audit.mark()
        scale_runs, scale_notes = phase_scale(ctx, peers, sizes, single_summary) if sizes else ([], [])
        time.sleep(1.0)
        sreqs = ctx.audit.read_from(scale_offset)
        tl2 = analysis.Timeline().feed(ctx.events())
        users = {p.key: p.user for p in all_peers}
        for r in scale_runs:
            if r.get("skipped"):
                continue
            mine = audit.select(sreqs, user=users[r["peer"]], start=r["start"] - 0.05, end=r["end"] + 0.05)
            r["requests"] = audit.count_by_verb(mine)
            others = audit.select(sreqs, start=r["start"], end=r["end"], pred=lambda q: not q.user.startswith("bench-")
                                  and "bench-watcher" not in q.user_agent)
            r["cluster_requests"] = audit.count_by_component(others)
            scale_lags(r, mine, users[r["peer"]], tl2, ctx)
        ctx.stop_watcher()

        notes = build_notes(ctx, all_peers, single_summary)
        results = {
            "meta": {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "mode": "quick" if args.quick else "full", "reps": reps, "duration_s": time.time() - t_start,
                     "machine": machine_info(), "versions": tool_versions(ctx, all_peers),
                     "fixture": "bench/fixtures/iris.yaml (the original program's deployment.yml: SKLEARN_SERVER, "
                                "v1alpha2, predictor replicas 1), scaled 1 → 2",
                     "notes": notes},
            "peers": {p.key: {"label": p.label, "available": p.available, "reason": p.reason, "variant": p.variant,
                              "user": p.user} for p in all_peers},
            "single": {"order": [p.key for p in peers], "runs": single_runs, "summary": single_summary,
                       "notes": lag_notes(single_summary, all_peers)},
            "slow": {"reps": slow_reps, "runs": slow_runs, "summary": slow_summary},
            "scale": {"sizes": sizes, "runs": scale_runs, "notes": scale_notes + scale_notes_auto(scale_runs, ctx)},
            "update": update,
        }
        write_results(results, args.out)
        log(f"wrote {os.path.join(args.out, 'results.json')} and RESULTS.md in {time.time() - t_start:.0f} s")
        return 0
    finally:
        procs.kill_live()
        ctx.stop_watcher()
        if not args.keep_cluster:
            log("stopping the benchmark cluster")
            ctx.cluster.down()


def own_cluster_section(args: argparse.Namespace, name: str, body, cleanup=None) -> int:
    """Runs `body(ctx, ours, t_start)` (its exit code returned) on a cluster of its own
    (`.testenv-NAME` unless --cluster-dir) with the release build (or --binary); then
    `cleanup(ctx)`, and the cluster stopped unless --keep-cluster."""
    if args.cluster_dir == os.path.join(REPO, ".testenv-bench"):
        args.cluster_dir = os.path.join(REPO, f".testenv-{name}")
    t_start = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx = Ctx(args)
    log(f"scratch: {ctx.scratch}")
    try:
        log(f"starting the {name} cluster in {ctx.cluster.dir}")
        ctx.cluster.up()
        ctx.api = Api(ctx.cluster.kubeconfig)
        ours = Ours(ctx)
        ours.setup()
        if not ours.available:
            raise RuntimeError(ours.reason)
        ctx.binary = ours.binary  # type: ignore[attr-defined]
        return body(ctx, ours, t_start)
    finally:
        if cleanup is not None:
            cleanup(ctx)
        procs.kill_live()
        if not args.keep_cluster:
            log(f"stopping the {name} cluster")
            ctx.cluster.down()


def section_meta(ours, t_start: float) -> dict:
    """The meta of a section run on its own: command, version, date, duration, load."""
    return {"command": "bench/run " + " ".join(sys.argv[1:]), "seldon_deploy": ours.version,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "duration_s": round(time.time() - t_start), "load_avg_1m": os.getloadavg()[0]}


def main_chaos(args: argparse.Namespace) -> int:
    """`--chaos`: its own cluster (`.testenv-chaos` unless --cluster-dir), the release build, the
    chaos section merged into OUT/results.json and RESULTS.md re-rendered."""
    from . import chaos

    def body(ctx, ours, t_start) -> int:
        result = chaos.run_chaos(ctx, args, log)
        result["meta"] = section_meta(ours, t_start)
        path = os.path.join(args.out, "results.json")
        results = load_results(args.out, result["meta"], ours.version)
        results["chaos"] = result
        write_results(results, args.out)
        log(f"merged the chaos section into {path}: {result['ended_right']}/{args.chaos_lifecycles + args.chaos_applies} "
            f"ended right, {len(result['wrong_success'])} wrong successes, {len(result['left_behind'])} left behind")
        return 0 if not result["wrong_success"] and not result["left_behind"] else 1

    return own_cluster_section(args, "chaos", body)


def main_soak(args: argparse.Namespace) -> int:
    """`--soak`: its own cluster (`.testenv-soak` unless --cluster-dir), the release build (or
    --binary), the soak section merged into OUT/results.json, RESULTS.md re-rendered and the plot
    written as OUT/soak-rss.png."""
    from . import soak

    def body(ctx, ours, t_start) -> int:
        result = soak.run_soak(ctx, args, log)
        result["meta"] = section_meta(ours, t_start)
        os.makedirs(args.out, exist_ok=True)
        png = os.path.join(args.out, "soak-rss.png")
        if soak.ensure_matplotlib(log):
            try:
                soak.plot(result, png)
                result["plot"] = "soak-rss.png"
            except Exception as e:  # the numbers still go in
                result["plot_error"] = f"matplotlib failed: {e}"
        else:
            result["plot_error"] = "matplotlib is not installed and `pip install matplotlib` failed"
        path = os.path.join(args.out, "results.json")
        results = load_results(args.out, result["meta"], ours.version)
        results["soak"] = result
        write_results(results, args.out)
        fl, c = result["flatness"], result["counts"]
        log(f"merged the soak section into {path}" + (f", plot {png}" if result.get("plot") else "") +
            f": flat={fl['flat']} ({fl['baseline_mean_mb']} → {fl['late_mean_mb']} MB), {c['completed']} lifecycles "
            f"completed, {c['succeeded']} succeeded, {len(result['left_behind'])} left behind")
        return 0 if fl["flat"] and not result["left_behind"] and result["ran_out_at_min"] is None else 1

    def stop_the_process(ctx) -> None:
        p = getattr(ctx, "soak_proc", None)
        if p is not None and p.poll() is None:
            log("stopping the soak's seldon-deploy process (SIGINT)")
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    return own_cluster_section(args, "soak", body, stop_the_process)


def load_results(out_dir: str, meta: dict, version: str) -> dict:
    """OUT/results.json to merge a section into; without one, a stub whose meta says so (the
    other sections then render as absent)."""
    path = os.path.join(out_dir, "results.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"meta": {"command": meta["command"], "date": meta["date"], "mode": "one section only",
                     "duration_s": meta["duration_s"], "machine": machine_info(),
                     "versions": {"seldon-deploy": version, "python": platform.python_version()},
                     "fixture": "bench/fixtures/iris.yaml", "notes": []},
            "peers": {}}


def write_results(results: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=False, default=str)
        f.write("\n")
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(report.render(results) + "\n")


def run_update_section(ctx: Ctx, upd_all: list[Peer], upd_peers: list[Peer], reps: int, command: str) -> dict:
    """The update section of results.json: its own audit window, meta and notes, so that it can
    run alone (--only update) and be merged into an earlier full run's results."""
    t0 = time.time()
    load0 = os.getloadavg()
    offset = ctx.audit.mark()  # type: ignore[union-attr]
    data = phase_update(ctx, upd_peers, reps) if upd_peers and reps > 0 else {"runs": [], "fixture": {}}
    time.sleep(1.0)
    attach_update(data["runs"], upd_peers, ctx.audit.read_from(offset), ctx.events())  # type: ignore[union-attr]
    summary = summarize_update(data["runs"], [p.key for p in upd_peers])
    notes = []
    for p in upd_peers:
        sm = summary.get(p.key) or {}
        if sm.get("early_pods"):
            notes.append(f"{p.label} moved on while old pods still served (or new ones were not ready) in "
                         f"{sm['early_pods']} of {sm['ok']} runs.")
        only_state = sm.get("early_update", 0) - sm.get("early_pods", 0)
        if only_state > 0:
            notes.append(f"{p.label} moved on after the last old pod was gone but before the operator said "
                         f"`Available` again in {only_state} of {sm['ok']} runs (the SeldonDeployment still said "
                         "`Creating`): early by the full rule, harmless for traffic.")
    load1 = os.getloadavg()
    nproc = os.cpu_count() or 1
    if max(load0[0], load1[0]) > nproc:
        notes.append(f"The machine was busy (1-minute load average {load0[0]:.1f} → {load1[0]:.1f} on {nproc} CPUs, "
                     "other work sharing them): the times are noisy. The request counts and the sign of the lags "
                     "(whether a peer moved on before the rollout was complete) do not depend on it.")
    return {
        "meta": {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "duration_s": time.time() - t0, "reps": reps, "machine": machine_info(),
                 "load_avg_1m": [load0[0], load1[0]], "seldon_deploy": tool_versions(ctx, upd_all).get("seldon-deploy")},
        "peers": {p.key: {"label": p.label, "available": p.available, "reason": p.reason, "variant": p.variant,
                          "user": p.user} for p in upd_all},
        "order": [p.key for p in upd_peers],
        "fixture": data["fixture"],
        "runs": data["runs"],
        "summary": summary,
        "notes": notes,
    }


def lag_notes(summary: dict, peers: list[Peer]) -> list[str]:
    out = []
    for p in peers:
        sm = summary.get(p.key)
        if not sm:
            continue
        for ph, what in (("ready1", "ready at 1"), ("ready2", "ready at 2"), ("gone", "gone")):
            if sm.get(f"early_{ph}"):
                out.append(f"{p.label} moved on before *{what}* held in {sm[f'early_{ph}']} of {sm['ok']} runs.")
    return out


def scale_notes_auto(runs: list[dict], ctx: Ctx) -> list[str]:
    out = []
    nproc = os.cpu_count() or 1
    for r in runs:
        if r.get("skipped"):
            continue
        if r.get("cluster_cpu_total_pct", 0) > 70 * nproc:
            out.append(f"N={r['n']} {r['peer']}: the control plane used {r['cluster_cpu_total_pct']:.0f}% CPU of "
                       f"{100 * nproc}% — the cluster, not the client, is the bottleneck.")
    return out


def build_notes(ctx: Ctx, peers: list[Peer], summary: dict) -> list[str]:
    notes = [
        "Fake nodes (KWOK): pods turn Ready as soon as they are scheduled, so the lifecycle is dominated by the "
        "control plane and the clients, which is what this benchmark compares. Real clusters add image pulls and "
        "readiness probes to every wait.",
        "kubectl's `wait --for=jsonpath='{.status.state}'=Available` (the recipe in Seldon's docs) can pass on stale "
        "status: SeldonDeployment v1 has no observedGeneration, so right after the scale patch the state written for "
        "the previous generation still says Available. The strict script adds a wait for "
        "`status.deploymentStatus[<dep>].availableReplicas=N` first, and deletes with `--cascade=foreground` so "
        "`--wait` covers the owned Deployments. `kubectl scale` is not used: it only sets spec.replicas through /scale, "
        "which the iris example's predictor-level replicas override; the script sends one JSON patch setting "
        "spec.replicas, every predictor's replicas, and componentSpec replicas where already set.",
        "Setting componentSpecs[].replicas where it was unset (the original program sets all three levels) changes the "
        "pod template in Seldon 1.19: the operator embeds the predictor, componentSpecs included, in the executor's "
        "environment, so the Deployment rolls all its pods. The 30 s fixture has a componentSpec (for the annotation), "
        "so there the original program triggers a rolling update, and moves on while it is still in progress "
        "(availableReplicas == 2 counts the old pod).",
        "seldon-deploy's wait for *ready at N* also requires the SDep's own status to report N, i.e. it waits for the "
        "operator's status write, which comes after the Deployments are ready (see 'operator status delay' at scale); "
        "its lag against that moment is in the 'vs SDep status' columns.",
        "The original program polls every 4 s and waits until any deploymentStatus entry has availableReplicas == N "
        "(N=1, then 2); it does not wait for deletion, so its *gone* lag is negative by construction.",
        "The clocks agree: peers, the watcher and the apiserver's audit log all run on this machine. Two watchers "
        "do not see an event at the same instant, so lags of a few ms either way are at the method's precision; "
        f"a peer counts as *early* only when it moved on more than {analysis.EARLY_TOLERANCE * 1000:.0f} ms before "
        "the condition held (or it never held).",
        "The audit log runs in blocking mode, which adds a little latency to every request, equally for all peers.",
    ]
    for p in peers:
        if isinstance(p, Original):
            notes.append(f"Original program measured: {p.variant}." + (f" Build notes: {p.build_log}." if p.build_log else ""))
        if isinstance(p, Ours) and p.available and not getattr(p, "multi", False):
            notes.append("seldon-deploy has no multi-deployment mode yet (`run --help` has no `--concurrency`): the scale "
                         "runs start one seldon-deploy process per SeldonDeployment.")
    return notes


if __name__ == "__main__":
    sys.exit(main())
