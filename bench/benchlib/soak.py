"""`bench/run --soak`: one `seldon-deploy run` process, lifecycles back to back, its RSS sampled.

One process runs lifecycles of the iris example (create, wait, scale 1 → 2, wait, delete) at
`--concurrency` (`--soak-concurrency`, 20) from a directory of generated manifests, each a
distinct name, more than it can finish before the deadline (`--soak-minutes`, 30). Its resident
set (VmRSS in /proc/<pid>/status) is sampled at the start and every `--soak-sample-s` (60 s),
with the lifecycles finished so far (its `delete: ok` log lines). At the deadline it gets
SIGINT: it cancels the lifecycles in flight, deletes what they created, and prints its report
(`-o jsonl`: one line per lifecycle as it ends, none kept in memory), from which the lifecycles completed and succeeded are counted; then the namespace
must hold no SeldonDeployment and no Deployment.

The rule (`flatness`): the RSS curve is flat when the mean of the samples in the last third of
the run (minutes 20–30 of 30) is at most 5% above the mean of the samples from the first sixth to
the half (minutes 5–15 of 30); a drop passes (the question is growth). The windows scale with
`--soak-minutes`.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from typing import Optional

# The windows compared, as fractions of the run: minutes 5–15 and 20–30 of a 30-minute soak.
BASELINE = (1 / 6, 1 / 2)
LATE = (2 / 3, 1.0)
TOLERANCE = 0.05
# Manifests to generate: the process parses them all at its start (several KiB of RSS each), so
# not blindly many: the throughput a calibration run measured (`concurrency` / its median
# lifecycle) times the duration, times MARGIN. Without a calibration: a lifecycle every FLOOR_S
# seconds on every slot.
MARGIN = 1.5
FLOOR_S = 2.0
NAMESPACE = "soak"
DONE_RE = re.compile(rb"\] delete: ok in ")


def windows(minutes: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The baseline and late windows, in minutes since the start, for a run of `minutes`."""
    return (BASELINE[0] * minutes, BASELINE[1] * minutes), (LATE[0] * minutes, LATE[1] * minutes)


def _mean(xs: list[float]) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def flatness(samples: list[dict], minutes: float, tol: float = TOLERANCE) -> dict:
    """The rule on `samples` ({"min": minutes since the start, "rss_mb": ...}; bounds inclusive).
    Flat: the late mean at most `tol` above the baseline mean (a drop passes). `flat` is None
    when a window holds no sample (the run ended early)."""
    (b0, b1), (l0, l1) = windows(minutes)
    eps = 1e-6
    base = [s["rss_mb"] for s in samples if b0 - eps <= s["min"] <= b1 + eps]
    late = [s["rss_mb"] for s in samples if l0 - eps <= s["min"] <= l1 + eps]
    out: dict = {"baseline_window": [round(b0, 2), round(b1, 2)], "late_window": [round(l0, 2), round(l1, 2)],
                 "tolerance": tol, "n_baseline": len(base), "n_late": len(late),
                 "baseline_mean_mb": None, "late_mean_mb": None, "late_max_mb": None,
                 "change": None, "change_max": None, "flat": None}
    if not base or not late:
        return out
    bm, lm, lx = _mean(base), _mean(late), max(late)
    out.update(baseline_mean_mb=round(bm, 2), late_mean_mb=round(lm, 2), late_max_mb=round(lx, 2),
               change=round(lm / bm - 1, 4), change_max=round(lx / bm - 1, 4))
    out["flat"] = lm / bm - 1 <= tol
    return out


def growth_per_lifecycle_kb(samples: list[dict], minutes: float) -> Optional[float]:
    """Least-squares slope of RSS against lifecycles done, from the baseline window's start on
    (the warm-up excluded), in KiB per lifecycle; None without two distinct counts."""
    start = windows(minutes)[0][0]
    pts = [(s["done"], s["rss_mb"]) for s in samples if s["min"] >= start - 1e-6 and s.get("done") is not None]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    return round(sxy / sxx * 1024, 3)


def vm_rss_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def manifest_count(minutes: float, concurrency: int, lifecycle_s: Optional[float] = None) -> int:
    """Enough manifests for `minutes` at `concurrency`: MARGIN times what lifecycles of
    `lifecycle_s` would use, or one every FLOOR_S seconds per slot when it is unknown."""
    if lifecycle_s:
        return int(minutes * 60 * concurrency / lifecycle_s * MARGIN) + concurrency
    return int(minutes * 60 * concurrency / FLOOR_S) + concurrency


def lifecycle_seconds(reports: list[dict]) -> list[float]:
    """Each successful report's span: its first phase's start to its last phase's end."""
    from .chaos import parse_start
    out = []
    for r in reports:
        ph = r.get("phases") or []
        if r.get("outcome") != "success" or not ph:
            continue
        s = parse_start(ph[0]["start"])
        out.append(max(parse_start(p["start"]) + p["duration_ms"] / 1000 for p in ph) - s)
    return out


def parse_lines(text: str) -> list[dict]:
    """The reports of `-o jsonl`: one JSON document per line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def count_reports(reports: list[dict]) -> dict:
    """Completed (not ended by the final SIGINT), succeeded, and the interrupted ones: in flight
    (it had started) or never started (no phase)."""
    completed = [r for r in reports if r.get("outcome") != "interrupted"]
    interrupted = [r for r in reports if r.get("outcome") == "interrupted"]
    failed = [r for r in completed if r.get("outcome") != "success"]
    return {
        "completed": len(completed),
        "succeeded": len(completed) - len(failed),
        "failed": [{"name": r.get("name"), "outcome": r.get("outcome"), "error": (r.get("error") or "")[:300]}
                   for r in failed],
        "interrupted_in_flight": sum(1 for r in interrupted if r.get("phases")),
        "never_started": sum(1 for r in interrupted if not r.get("phases")),
        "left_behind_reported": sorted({x for r in reports for x in (r.get("left_behind") or [])}),
    }


def ensure_matplotlib(log) -> bool:
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    log("soak: installing matplotlib (python3 -m pip install --quiet matplotlib)")
    import sys
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        log(f"soak: pip failed: {r.stderr.strip()[-500:]}")
        return False
    import importlib
    importlib.invalidate_caches()
    try:
        import matplotlib  # noqa: F401,F811
        return True
    except ImportError:
        return False


def plot(s: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["min"] for p in s["samples"]]
    ys = [p["rss_mb"] for p in s["samples"]]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    fl = s["flatness"]
    (b0, b1), (l0, l1) = fl["baseline_window"], fl["late_window"]
    ax.axvspan(b0, b1, color="tab:blue", alpha=0.12, label=f"baseline, minutes {b0:g}–{b1:g}")
    ax.axvspan(l0, l1, color="tab:orange", alpha=0.15, label=f"late, minutes {l0:g}–{l1:g}")
    if fl.get("baseline_mean_mb") is not None:
        bm = fl["baseline_mean_mb"]
        ax.hlines(bm, b0, b1, colors="tab:blue", linestyles="--", linewidth=1)
        ax.hlines(fl["late_mean_mb"], l0, l1, colors="tab:orange", linestyles="--", linewidth=1)
        ax.axhspan(bm * (1 - fl["tolerance"]), bm * (1 + fl["tolerance"]), color="grey", alpha=0.08,
                   label=f"baseline mean ± {fl['tolerance'] * 100:g}%")
    ax.plot(xs, ys, marker="o", markersize=3, color="black", linewidth=1.2, label="VmRSS")
    ax.set_xlabel("minutes since start")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0, top=max(ys + [1]) * 1.25)
    ax.set_xlim(0, max(xs + [s["minutes"]]))
    verdict = {True: "flat", False: "NOT flat", None: "no verdict"}[fl["flat"]]
    ax.set_title(f"seldon-deploy run --concurrency {s['concurrency']}: RSS over {s['minutes']:g} min "
                 f"({s['counts']['completed']} lifecycles; {verdict})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_soak(ctx, args, log) -> dict:  # noqa: C901 (one linear script)
    """Runs the soak on `ctx`'s (started) cluster; returns its results."""
    from .chaos import renamed
    from .main import BENCH, ensure_namespace, ensure_nodes
    api = ctx.api
    minutes, conc, every = args.soak_minutes, args.soak_concurrency, args.soak_sample_s
    scratch = os.path.join(ctx.scratch, "soak")
    mdir = os.path.join(scratch, "manifests")
    os.makedirs(mdir, exist_ok=True)
    ensure_nodes(api, 3 + 2 * conc // 60 + 1)
    ensure_namespace(api, NAMESPACE)
    # `-o jsonl`: each report is written as its lifecycle ends and not kept (with `-o json`
    # the process holds every report for its closing document: growth by design, not a leak).
    base_argv = [ctx.binary, "run", "-n", NAMESPACE, "--concurrency", str(conc), "--replicas", "2",
                 "--timeout", "5m", "-o", "jsonl", "--kubeconfig", ctx.cluster.kubeconfig]
    calibration: dict = {}
    if args.soak_manifests:
        n = args.soak_manifests
    else:
        # A calibration run (and warm-up): 2 × concurrency lifecycles, their median length.
        cdir = os.path.join(scratch, "calibration")
        os.makedirs(cdir, exist_ok=True)
        for i in range(2 * conc):
            renamed(os.path.join(BENCH, "fixtures", "iris.yaml"), "sklearn", f"calib-{i:03d}",
                    os.path.join(cdir, f"{i:03d}.yaml"))
        log(f"soak: calibration: {2 * conc} lifecycles at --concurrency {conc}")
        c0 = time.time()
        r = subprocess.run(base_argv + ["-f", cdir], capture_output=True, text=True, timeout=1200)
        try:
            spans = lifecycle_seconds(parse_lines(r.stdout))
        except ValueError:
            spans = []
        med = sorted(spans)[len(spans) // 2] if spans else None
        calibration = {"lifecycles": 2 * conc, "succeeded": len(spans), "exit_code": r.returncode,
                       "wall_s": round(time.time() - c0, 1), "median_lifecycle_s": round(med, 2) if med else None}
        n = manifest_count(minutes, conc, med)
        log(f"soak: calibration: {calibration}; {n} manifests")
    width = len(str(n))
    for i in range(n):
        renamed(os.path.join(BENCH, "fixtures", "iris.yaml"), "sklearn", f"soak-{i:0{width}d}",
                os.path.join(mdir, f"{i:0{width}d}.yaml"))
    log(f"soak: {n} manifests in {mdir}")
    out_path, err_path = os.path.join(scratch, "run.json"), os.path.join(scratch, "run.err")
    argv = base_argv + ["-f", mdir]
    t0 = time.time()
    proc = subprocess.Popen(argv, stdout=open(out_path, "w"), stderr=open(err_path, "wb"))
    ctx.soak_proc = proc  # for the harness's clean-up on an error
    log(f"soak: pid {proc.pid}: {' '.join(argv[1:])}; {minutes:g} min, a sample every {every:g} s")
    samples: list[dict] = []
    done, err_off, tail = 0, 0, b""

    def sample() -> None:
        nonlocal done, err_off, tail
        kb = vm_rss_kb(proc.pid)
        try:
            with open(err_path, "rb") as f:
                f.seek(err_off)
                chunk = f.read()
            err_off += len(chunk)
            # Count only whole lines; keep the unfinished one for the next read.
            buf = tail + chunk
            cut = buf.rfind(b"\n") + 1
            done += len(DONE_RE.findall(buf[:cut]))
            tail = buf[cut:]
        except OSError:
            pass
        if kb is not None:
            m = (time.time() - t0) / 60
            samples.append({"min": round(m, 3), "rss_mb": round(kb / 1024, 2), "done": done})
            log(f"soak: +{m:5.1f} min RSS {kb / 1024:7.1f} MB, {done} lifecycles done")

    time.sleep(min(2.0, every))  # "at the start": once the manifests are loaded and it has connected
    sample()
    k, ran_out = 1, None
    deadline = t0 + minutes * 60
    while True:
        at = min(t0 + k * every, deadline)
        while time.time() < at and proc.poll() is None:
            time.sleep(min(0.5, max(0.0, at - time.time())))
        if proc.poll() is not None:
            ran_out = round((time.time() - t0) / 60, 2)
            log(f"soak: the process ended by itself after {ran_out} min (exit {proc.returncode})")
            break
        sample()
        if at >= deadline:
            break
        k += 1
    stop = time.time()
    signals = []
    if proc.poll() is None:
        log("soak: deadline: SIGINT (it deletes what it created)")
        proc.send_signal(signal.SIGINT)
        signals.append("SIGINT")
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            log("soak: still running 180 s after SIGINT: a second SIGINT, then SIGKILL")
            proc.send_signal(signal.SIGINT)
            signals.append("SIGINT")
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                signals.append("SIGKILL")
                proc.wait()
    exit_code = proc.returncode
    stop_s = round(time.time() - stop, 1)
    log(f"soak: exit {exit_code}, {stop_s} s after the deadline")
    try:
        with open(out_path) as f:
            reports = parse_lines(f.read())
        report_bytes = os.path.getsize(out_path)
    except (OSError, ValueError) as e:
        log(f"soak: no report read from {out_path}: {e}")
        reports, report_bytes = [], None
    counts = count_reports(reports)
    # Nothing left: the namespace empty once the garbage collector had its time.
    left: list[str] = []
    end = time.time() + 120
    while time.time() < end:
        sdeps = api.get(f"/apis/machinelearning.seldon.io/v1/namespaces/{NAMESPACE}/seldondeployments").get("items", [])
        ds = api.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments").get("items", [])
        left = [f"SeldonDeployment/{o['metadata']['name']}" for o in sdeps] + \
               [f"Deployment/{o['metadata']['name']}" for o in ds]
        if not left:
            break
        time.sleep(2)
    per_min = [{"min": b["min"], "done": b["done"] - a["done"]} for a, b in zip(samples, samples[1:])]
    completed_reports = [r for r in reports if r.get("outcome") != "interrupted"]
    report_kb = None
    if completed_reports:
        report_kb = round(sum(len(json.dumps(r)) for r in completed_reports) / len(completed_reports) / 1024, 2)
    return {
        "minutes": minutes,
        "concurrency": conc,
        "sample_s": every,
        "namespace": NAMESPACE,
        "manifests": n,
        "calibration": calibration,
        "started": time.strftime("%H:%M:%S", time.gmtime(t0)),
        "ran_out_at_min": ran_out,
        "signals": signals,
        "exit_code": exit_code,
        "stop_s": stop_s,
        "samples": samples,
        "per_interval": per_min,
        "flatness": flatness(samples, minutes),
        "growth_kb_per_lifecycle": growth_per_lifecycle_kb(samples, minutes),
        "report_kb_per_lifecycle": report_kb,
        "report_bytes": report_bytes,
        "counts": counts,
        "left_behind": left,
        "scratch": scratch,
    }


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{x * 100:+.1f}%"


def _sized(s: dict) -> str:
    cal = s.get("calibration") or {}
    if not cal:
        return ""
    if not cal.get("median_lifecycle_s"):
        return (f" (the calibration run's {cal['lifecycles']} lifecycles all failed: one every {FLOOR_S:g} s per slot "
                "instead)")
    return (f" ({MARGIN:g} × what a calibration run, {cal['lifecycles']} lifecycles at the same concurrency taking "
            f"{cal['median_lifecycle_s']} s each (median), implies: the process parses them all at its start)")


def render(s: dict) -> str:
    fl, c = s["flatness"], s["counts"]
    (b0, b1), (l0, l1) = fl["baseline_window"], fl["late_window"]
    lines = ["## Soak: RSS over lifecycles back to back", ""]
    lines.append(
        f"`bench/run --soak`: one `seldon-deploy run -o jsonl --concurrency {s['concurrency']}` process ran lifecycles of "
        f"the iris example (create, wait, scale 1 → 2, wait, delete) back to back from {s['manifests']} generated "
        f"manifests{_sized(s)} for {s['minutes']:g} min, then got SIGINT (it cancels the lifecycles in flight and "
        f"deletes what they created). Its VmRSS (`/proc/<pid>/status`) was sampled at the start (manifests parsed, "
        f"connected) and every {s['sample_s']:g} s.")
    lines.append("")
    lines.append(f"**Rule**: flat when the mean RSS of the samples in minutes {l0:g}–{l1:g} is at most "
                 f"{fl['tolerance'] * 100:g}% above the mean of those in minutes {b0:g}–{b1:g} (the last third "
                 "against the first sixth to the half of the run; for 30 minutes: 20–30 against 5–15; bounds "
                 "included; a drop passes).")
    lines.append("")
    if fl["flat"] is None:
        verdict = (f"**no verdict**: a window holds no sample ({fl['n_baseline']} baseline, {fl['n_late']} late)")
    else:
        verdict = ("**flat**" if fl["flat"] else "**not flat**") + (
            f": {fl['late_mean_mb']} MB (mean of {fl['n_late']}) against {fl['baseline_mean_mb']} MB "
            f"(mean of {fl['n_baseline']}), {_pct(fl['change'])}; the late window's maximum "
            f"{fl['late_max_mb']} MB is {_pct(fl['change_max'])}")
    lines.append(f"- **Verdict**: {verdict}.")
    if s.get("ran_out_at_min") is not None:
        lines.append(f"- **The process ended by itself** after {s['ran_out_at_min']} min, before the deadline "
                     "(it ran out of manifests or failed): the soak is incomplete.")
    lines.append(f"- **Lifecycles**: {c['completed']} completed, {c['succeeded']} succeeded"
                 + (f", {len(c['failed'])} failed ("
                    + "; ".join(f"{f['name']} {f['outcome']}: {f['error'][:120]}" for f in c["failed"][:3]) + ")"
                    if c["failed"] else "")
                 + f"; at the SIGINT {c['interrupted_in_flight']} in flight were cancelled and cleaned up "
                 f"({c['never_started']} queued never started). Exit {s['exit_code']} "
                 f"{s['stop_s']} s after the signal ({', '.join(s['signals']) or 'none sent'}).")
    lines.append(f"- **Left behind** in namespace `{s['namespace']}` (SeldonDeployments and Deployments, after up to "
                 f"120 s for the garbage collector): {len(s['left_behind'])}"
                 + (": " + ", ".join(s["left_behind"][:10]) if s["left_behind"] else ".")
                 + (f" The report named {len(c['left_behind_reported'])} left behind."
                    if c["left_behind_reported"] else ""))
    g = s.get("growth_kb_per_lifecycle")
    if g is not None:
        lines.append(f"- Growth against work (least squares of RSS on lifecycles done, from minute {b0:g} on): "
                     f"{g:.2f} KiB per lifecycle. For scale: `run` holds every finished lifecycle's report until "
                     f"it prints them all at the end ({s.get('report_kb_per_lifecycle')} KiB of JSON each).")
    lines.append("")
    if s.get("plot"):
        lines.append(f"![RSS over the soak]({s['plot']})")
    else:
        lines.append(f"(No plot: {s.get('plot_error') or 'not drawn'}.)")
    lines.append("")
    lines.append("Samples (minute: RSS MB, lifecycles done so far):")
    lines.append("")
    lines.append(", ".join(f"{p['min']:.1f}: {p['rss_mb']:.1f} ({p['done']})" for p in s["samples"]) + ".")
    return "\n".join(lines) + "\n"
