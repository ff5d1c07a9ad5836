"""Statistics of repeated measurements, summarized the same way by every bench script.

Percentiles interpolate linearly between the two nearest values (numpy's default method), so the
median of an even count is the mean of the middle two, and p95 of 20 values lies between the 19th
and the 20th.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

PERCENTILES = {"p25": 25.0, "p50": 50.0, "p75": 75.0, "p95": 95.0, "p99": 99.0}


def summarize(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """``n``, ``min``, ``p25``, ``p50`` (the median), ``p75``, ``iqr`` (p75 - p25: the spread that
    one outlier does not move), ``p95``, ``p99``, ``mean`` and ``max``, rounded to ``digits``.
    Only ``{"n": 0}`` for no values: a percentile of nothing is not zero."""
    if len(values) == 0:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    cut = dict(zip(PERCENTILES, np.percentile(a, list(PERCENTILES.values())).tolist(), strict=True))
    return {"n": int(a.size), "min": round(float(a.min()), digits),
            **{name: round(value, digits) for name, value in cut.items()},
            "iqr": round(cut["p75"] - cut["p25"], digits),
            "mean": round(float(a.mean()), digits), "max": round(float(a.max()), digits)}


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    """``numerator / denominator`` rounded, or None when either is missing or not a number, or the
    denominator is 0: a ratio that cannot be computed is shown as missing, never as 0 or inf."""
    if numerator is None or denominator is None or not denominator:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, digits)


def format_ratio(value: float | None, digits: int = 3, missing: str = "-") -> str:
    """A ratio for a table cell: ``missing`` when it could not be computed."""
    return missing if value is None else f"{value:.{digits}f}"


def ms_since(started: float) -> float:
    """Milliseconds since ``started``, a ``time.perf_counter()`` reading."""
    return (time.perf_counter() - started) * 1000
