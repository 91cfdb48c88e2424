#!/usr/bin/env python3
"""The smoke section: from a ready SeldonDeployment to a verified answer.

Compares, interleaved on one audited testenv cluster (its own state directory), in a fresh
namespace per run with a ready one-predictor SeldonDeployment (Seldon protocol, testenv's
seldon-core model server behind port-forward):

- `seldon-deploy smoke NAME -f request.json --expect answer.json -o json`;
- Seldon's documented recipe: `kubectl port-forward svc/NAME-default 8000` in the background,
  then `curl -X POST .../api/v1.0/predictions` (retried every 100 ms until the forward
  listens), the answer checked against the expected one, then the forward stopped.

Per run: wall time (start of the peer to a verified answer, process start included), CPU of the
peer's processes (user + system, children reaped), and the API requests in the run's namespace
(plus cluster-scoped SelfSubjectAccessReviews) by user agent, from the audit log.

    python3 bench/smoke.py [--reps 5] [--binary target/release/seldon-deploy]

Standard library only. Prints its Markdown section and merges it into bench/results.json (key `smoke`), re-rendering bench/RESULTS.md.
"""
import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, ".testenv-bench-smoke")
ENV = dict(os.environ, SDEP_TESTENV_DIR=STATE, SDEP_TESTENV_AUDIT="1")
REQUEST = {"data": {"ndarray": [[1, 2], [3, 4]]}}
ANSWER = {"data": {"names": ["sum"], "ndarray": [[3.0], [7.0]]}}


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=ENV, **kw).stdout


def manifest(name):
    return {
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"predictors": [{
            "name": "default", "replicas": 1,
            "componentSpecs": [{"metadata": {"annotations": {"test.seldon-deploy/ready-delay": "1s"}},
                                "spec": {"containers": [{"name": "classifier",
                                                         "image": "seldonio/mock_classifier_rest:1.3"}]}}],
            "graph": {"name": "classifier", "type": "MODEL", "endpoint": {"type": "REST"}}}]}}


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_seldon_deploy(binary, kubeconfig, ns, name, files):
    cpu0, t0 = children_cpu(), time.monotonic()
    out = subprocess.run([binary, "smoke", name, "-n", ns, "-f", files["request"], "--expect", files["answer"],
                          "-o", "json", "--kubeconfig", kubeconfig], capture_output=True, text=True)
    wall = time.monotonic() - t0
    ok = out.returncode == 0 and json.loads(out.stdout)["smoke"][0]["outcome"] == "ok"
    return ok, wall, children_cpu() - cpu0


def run_recipe(kubectl, kubeconfig, ns, name, files):
    port = free_port()
    cpu0, t0 = children_cpu(), time.monotonic()
    pf = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward",
                           f"svc/{name}-default", f"{port}:8000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = False
    try:
        deadline = t0 + 30
        while time.monotonic() < deadline:
            c = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
                                "-H", "Content-Type: application/json", "--data-binary", f"@{files['request']}",
                                f"http://127.0.0.1:{port}/api/v1.0/predictions"], capture_output=True, text=True)
            if c.returncode == 7:  # the forward is not listening yet
                time.sleep(0.1)
                continue
            body, _, code = c.stdout.rpartition("\n")
            ok = code == "200" and json.loads(body).get("data") == ANSWER["data"]
            break
        wall = time.monotonic() - t0
    finally:
        pf.terminate()
        pf.wait()
    return ok, wall, children_cpu() - cpu0


def requests_by_agent(audit, ns, since_line):
    """Audited requests of the run's namespace (and SelfSubjectAccessReviews) from line
    `since_line` on: per user agent (a key without a space), and per "verb resource"."""
    counts = {}
    with open(audit) as f:
        for i, line in enumerate(f):
            if i < since_line:
                continue
            e = json.loads(line)
            if e.get("stage") != "ResponseComplete":
                continue
            ref = e.get("objectRef", {})
            if ref.get("namespace") != ns and ref.get("resource") != "selfsubjectaccessreviews":
                continue
            agent = e.get("userAgent", "").split("/")[0]
            counts[agent] = counts.get(agent, 0) + 1
            what = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            verb = f"{e.get('verb', '?')} {what}"
            counts[verb] = counts.get(verb, 0) + 1
    return counts


def version(binary):
    r = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return r.stdout.strip() or "seldon-deploy ?"


def merge_into_results(section):
    """Puts the section into bench/results.json and re-renders bench/RESULTS.md."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from benchlib.main import write_results
    path = os.path.join(ROOT, "bench", "results.json")
    with open(path) as f:
        results = json.load(f)
    results["smoke"] = section
    write_results(results, os.path.join(ROOT, "bench"))


def line_count(path):
    with open(path) as f:
        return sum(1 for _ in f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/seldon-deploy"))
    args = ap.parse_args()
    cluster = os.path.join(ROOT, "testenv/cluster")
    subprocess.run([cluster, "up"], check=True, env=ENV, stdout=subprocess.DEVNULL)
    try:
        kubeconfig = sh(cluster, "kubeconfig").strip()
        kubectl = os.path.join(STATE, "kubectl")
        if not os.path.exists(kubectl):
            kubectl = "kubectl"
        audit = os.path.join(STATE, "logs", "audit.log")
        tmp = tempfile.mkdtemp()
        files = {}
        for key, value in (("request", REQUEST), ("answer", ANSWER)):
            files[key] = os.path.join(tmp, f"{key}.json")
            with open(files[key], "w") as f:
                json.dump(value, f)
        peers = {"seldon-deploy smoke": run_seldon_deploy, "kubectl port-forward + curl": run_recipe}
        results = {p: [] for p in peers}
        for rep in range(args.reps + 1):  # the first round warms up and is not counted
            for peer, fn in peers.items():
                ns = f"bench-smoke-{rep}-{len(results[peer])}-{'sd' if 'seldon' in peer else 'kc'}"
                sh(kubectl, "--kubeconfig", kubeconfig, "create", "namespace", ns)
                mf = os.path.join(tmp, f"{ns}.json")
                with open(mf, "w") as f:
                    json.dump(manifest("iris"), f)
                subprocess.run([args.binary, "create", "-n", ns, "-f", mf, "--kubeconfig", kubeconfig],
                               check=True, capture_output=True)
                time.sleep(1)  # let the create's own requests reach the audit log
                start = line_count(audit)
                binary_or_kubectl = args.binary if "seldon" in peer else kubectl
                ok, wall, cpu = fn(binary_or_kubectl, kubeconfig, ns, "iris", files)
                time.sleep(1)
                reqs = requests_by_agent(audit, ns, start)
                if rep > 0:
                    results[peer].append({"ok": ok, "wall_s": wall, "cpu_s": cpu, "requests": reqs})
                print(f"{'warm-up' if rep == 0 else f'rep {rep}'} {peer}: ok={ok} wall={wall:.3f}s cpu={cpu:.3f}s {reqs}",
                      file=sys.stderr)
                subprocess.run([kubectl, "--kubeconfig", kubeconfig, "delete", "namespace", ns, "--wait=false"],
                               env=ENV, capture_output=True)
        lines = ["## Smoke test: from a ready SeldonDeployment to a verified answer", "",
                 f"Generated by `python3 bench/smoke.py --reps {args.reps}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                 f"{version(args.binary)}, 1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. "
                 f"{args.reps} runs per peer, interleaved, each in a fresh namespace with a ready one-predictor "
                 "SeldonDeployment (Seldon protocol, testenv's seldon-core server behind the port-forward); "
                 "wall from the peer's start to a verified answer; CPU of its processes; the API requests of the run's "
                 "namespace (and SelfSubjectAccessReviews) from the audit log. Median (min–max).", "",
                 "| peer | verified | wall | CPU | API requests (by user agent) | by verb |",
                 "|---|---:|---:|---:|---|---|"]
        for peer, rs in results.items():
            walls = [r["wall_s"] for r in rs]
            cpus = [r["cpu_s"] for r in rs]
            agents = {}
            for r in rs:
                for a, n in r["requests"].items():
                    agents.setdefault(a, []).append(n)
            reqs = ", ".join(f"{a}: {statistics.median(n):g}" for a, n in sorted(agents.items()) if " " not in a)
            verbs = ", ".join(f"{a} {statistics.median(n):g}" for a, n in sorted(agents.items()) if " " in a)
            lines.append(f"| {peer} | {sum(r['ok'] for r in rs)}/{len(rs)} | {statistics.median(walls):.3f} s "
                         f"({min(walls):.3f}–{max(walls):.3f}) | {statistics.median(cpus) * 1000:.0f} ms | {reqs} | {verbs} |")
        markdown = "\n".join(lines) + "\n"
        print(markdown)
        merge_into_results({"markdown": markdown, "runs": results})
    finally:
        subprocess.run([cluster, "down"], env=ENV, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
