"""Median and spread of repeated measurements."""
from __future__ import annotations

import math
from typing import Iterable, Optional


def _clean(values: Iterable[Optional[float]]) -> list[float]:
    return sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated quantile (the same rule as numpy's default and Python's 'inclusive')."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(values: Iterable[Optional[float]]) -> dict:
    """n, median, min, max, q1, q3 of the non-missing values (None when there are none)."""
    v = _clean(values)
    if not v:
        return {"n": 0, "median": None, "min": None, "max": None, "q1": None, "q3": None}
    return {
        "n": len(v),
        "median": quantile(v, 0.5),
        "min": v[0],
        "max": v[-1],
        "q1": quantile(v, 0.25),
        "q3": quantile(v, 0.75),
    }
