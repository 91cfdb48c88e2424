"""Running client processes and measuring them: wall time, wait4 rusage (peak RSS, CPU time),
and a sampler of the summed resident memory of a set of process trees."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class ProcResult:
    pid: int
    start: float
    end: float
    exit: int
    maxrss_kb: int   # peak RSS of the process (through RUSAGE_EXEC), else wait4's ru_maxrss
    cpu_s: float     # user + system, the process and its reaped descendants
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


def _decode_status(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return -1


LIVE: set["Proc"] = set()  # started and not yet reaped: killed if the harness stops early

# tools/rusage-exec, once built. A child forked from this (large) Python process keeps the
# parent's resident size until it execs, and wait4's ru_maxrss counts that: every small client
# would show about 37 MB. Started through rusage-exec (a small C program that forks and execs
# it), a process's peak is its own.
RUSAGE_EXEC: Optional[str] = None


def kill_live() -> None:
    for p in list(LIVE):
        p.kill()


class Proc:
    """A started process whose stdout/stderr go to files; reaped with wait4 for its rusage."""

    def __init__(self, argv: list[str], *, env: Optional[dict] = None, cwd: Optional[str] = None,
                 stdout_path: str, stderr_path: str):
        self.stdout_path, self.stderr_path = stdout_path, stderr_path
        self.rusage_path: Optional[str] = None
        if RUSAGE_EXEC and os.access(RUSAGE_EXEC, os.X_OK):
            self.rusage_path = stdout_path + ".rusage-self"
            argv = [RUSAGE_EXEC, self.rusage_path] + list(argv)
        out = open(stdout_path, "wb")
        err = open(stderr_path, "wb")
        self.start = time.time()
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        out.close(); err.close()
        self.pid = self.popen.pid
        self.result: Optional[ProcResult] = None
        LIVE.add(self)

    def _finish(self, status: int, ru, timed_out: bool = False) -> ProcResult:
        end = time.time()
        LIVE.discard(self)
        self.popen.returncode = _decode_status(status)  # keep Popen from reaping again
        with open(self.stdout_path, errors="replace") as f:
            so = f.read()
        with open(self.stderr_path, errors="replace") as f:
            se = f.read()
        maxrss = ru.ru_maxrss
        if self.rusage_path:
            own = read_rusage_file(self.rusage_path)
            if own:
                maxrss = own[0]["maxrss_kb"]
        self.result = ProcResult(self.pid, self.start, end, self.popen.returncode, maxrss,
                                 ru.ru_utime + ru.ru_stime, so, se, timed_out)
        return self.result

    def poll(self) -> Optional[ProcResult]:
        if self.result:
            return self.result
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        return self._finish(status, ru)

    def wait(self, deadline: Optional[float] = None) -> ProcResult:
        while True:
            r = self.poll()
            if r:
                return r
            if deadline is not None and time.time() > deadline:
                return self.kill()
            time.sleep(0.005)

    def kill(self) -> ProcResult:
        if self.result:
            return self.result
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, ru = os.wait4(self.pid, 0)
        r = self._finish(status, ru, timed_out=True)
        return r


def wait_all(procs: list[Proc], deadline: Optional[float] = None, interval: float = 0.02) -> list[ProcResult]:
    pending = list(procs)
    while pending:
        still = []
        for p in pending:
            if p.poll() is None:
                still.append(p)
        pending = still
        if not pending:
            break
        if deadline is not None and time.time() > deadline:
            for p in pending:
                p.kill()
            break
        time.sleep(interval)
    return [p.result for p in procs]  # type: ignore[misc]


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


class RssSampler(threading.Thread):
    """Samples the summed RSS of the given root processes and all their descendants; keeps the peak."""

    def __init__(self, roots: list[int], interval: float = 0.5, limit_kb: Optional[int] = None,
                 on_limit=None):
        super().__init__(daemon=True)
        self.roots, self.interval = list(roots), interval
        self.peak_kb = 0
        self.peak_procs = 0
        self.limit_kb, self.on_limit, self.over_limit = limit_kb, on_limit, False
        self._halt = threading.Event()

    def sample(self) -> None:
        kids = _children_map()
        seen: set[int] = set()
        stack = list(self.roots)
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            stack.extend(kids.get(p, []))
        total = sum(_rss_kb(p) for p in seen)
        if total > self.peak_kb:
            self.peak_kb, self.peak_procs = total, len(seen)
        if self.limit_kb and total > self.limit_kb and not self.over_limit:
            self.over_limit = True
            if self.on_limit:
                self.on_limit()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join(timeout=5)
        return self.peak_kb


def cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of a running process (from /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck


def read_rusage_file(path: str) -> list[dict]:
    """Lines written by tools/rusage-exec.c."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                out.append({"pid": int(p[0]), "maxrss_kb": int(p[1]), "cpu_s": float(p[2]) + float(p[3]),
                            "wall_s": float(p[4]), "exit": int(p[5]), "cmd": " ".join(p[6:])})
    except FileNotFoundError:
        pass
    return out
