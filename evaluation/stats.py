"""Bootstrap confidence intervals for run metrics, and paired comparisons of two runs.

Percentile bootstrap with ``numpy.random.default_rng(seed)``: the same values and seed give the
same interval. ``None`` values (a metric that did not apply) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Stat = Callable[[npt.NDArray[np.float64]], float]


def mean(values: npt.NDArray[np.float64]) -> float:
    return float(np.mean(values))


class Interval(NamedTuple):
    point: float  # the statistic on the values themselves
    low: float
    high: float


class PairedDiff(NamedTuple):
    diff: float  # stat(b - a): > 0 when b (the candidate) scores higher than a (the baseline)
    low: float
    high: float
    p: float  # share of resamples with diff <= 0: small when b is reliably better


def _check(n_resamples: int, alpha: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1 (got {n_resamples})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")


def _resampled(arr: npt.NDArray[np.float64], stat: Stat, n_resamples: int,
               seed: int) -> npt.NDArray[np.float64]:
    """``stat`` over ``n_resamples`` resamples (with replacement, same size) of ``arr``."""
    if np.all(arr == arr[0]):  # every resample is the same: an exact zero-width interval
        return np.full(n_resamples, stat(arr), dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(n_resamples, len(arr)))
    samples = arr[idx]
    if stat is mean:
        return np.asarray(samples.mean(axis=1), dtype=np.float64)
    return np.array([stat(row) for row in samples], dtype=np.float64)


def bootstrap_ci(values: Sequence[float | bool | None], stat: Stat = mean, n_resamples: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> Interval | None:
    """``(stat(values), low, high)``: the ``alpha/2`` and ``1 - alpha/2`` quantiles of ``stat`` over
    ``n_resamples`` bootstrap resamples. None values are ignored; None when no value is left."""
    _check(n_resamples, alpha)
    arr = np.array([float(v) for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return None
    boots = _resampled(arr, stat, n_resamples, seed)
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return Interval(float(stat(arr)), float(low), float(high))


def paired_bootstrap_diff(a: Sequence[float | bool | None], b: Sequence[float | bool | None],
                          stat: Stat = mean, n_resamples: int = 1000, alpha: float = 0.05,
                          seed: int = 0) -> PairedDiff | None:
    """Compare two runs on the same questions (``a[i]`` and ``b[i]`` are question i): bootstrap the
    per-question differences ``b[i] - a[i]`` (pairs with a None on either side are dropped) and
    return ``(stat(diffs), low, high, p)`` with ``p`` the share of resamples whose statistic is
    <= 0. None when no pair is left; ValueError when the lengths differ."""
    _check(n_resamples, alpha)
    if len(a) != len(b):
        raise ValueError(f"paired runs need the same questions (got {len(a)} and {len(b)} values)")
    diffs = np.array([float(y) - float(x) for x, y in zip(a, b, strict=True)
                      if x is not None and y is not None], dtype=np.float64)
    if diffs.size == 0:
        return None
    boots = _resampled(diffs, stat, n_resamples, seed)
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return PairedDiff(float(stat(diffs)), float(low), float(high), float(np.mean(boots <= 0)))
