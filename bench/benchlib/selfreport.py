"""What the peers say about their own phases."""
from __future__ import annotations

import json
from typing import Any, Optional

from .audit import parse_ts


def bench_marks(stdout: str) -> dict[str, float]:
    """'BENCH <epoch> <event>' lines of peers/kubectl-lifecycle.sh -> {event: epoch}."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        p = line.split()
        if len(p) == 3 and p[0] == "BENCH":
            try:
                out[p[2]] = float(p[1])
            except ValueError:
                pass
    return out


def _ts(v: Any) -> Optional[float]:
    if isinstance(v, (int, float)):
        return float(v) / 1000.0 if v > 1e11 else float(v)  # epoch ms or s
    if isinstance(v, str):
        try:
            return parse_ts(v)
        except ValueError:
            return None
    return None


def _find_phase_lists(doc: Any, name: Optional[str] = None) -> list[tuple[Optional[str], list]]:
    found: list[tuple[Optional[str], list]] = []
    if isinstance(doc, dict):
        nm = doc.get("name") if isinstance(doc.get("name"), str) else name
        if isinstance(doc.get("phases"), list):
            found.append((nm, doc["phases"]))
        for k, v in doc.items():
            if k != "phases":
                found.extend(_find_phase_lists(v, nm))
    elif isinstance(doc, list):
        for v in doc:
            found.extend(_find_phase_lists(v, name))
    return found


def tool_phases(stdout: str) -> list[dict]:
    """seldon-deploy's `-o json` report -> one entry per deployment:
    {"name": ..., "phases": [{"name", "start", "end", "outcome"}]}. Tolerant of the exact layout:
    any object holding a "phases" list of {name, start, duration_ms, outcome}."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        # Maybe several JSON documents, one per line.
        docs = []
        for line in stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    pass
        doc = docs
    out = []
    for name, phases in _find_phase_lists(doc):
        ps = []
        for ph in phases:
            if not isinstance(ph, dict):
                continue
            st = _ts(ph.get("start"))
            dur = ph.get("duration_ms")
            end = st + float(dur) / 1000.0 if st is not None and isinstance(dur, (int, float)) else None
            ps.append({"name": ph.get("name"), "start": st, "end": end, "outcome": ph.get("outcome")})
        out.append({"name": name, "phases": ps})
    return out
