"""Bootstrap intervals and paired comparisons: seeded, sensible, None-aware."""

from __future__ import annotations

import numpy as np
import pytest

from newsrag.evaluation.stats import bootstrap_ci, paired_bootstrap_diff

pytestmark = pytest.mark.unit

VALUES = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]  # mean 0.7


def test_same_seed_same_interval() -> None:
    assert bootstrap_ci(VALUES, seed=3) == bootstrap_ci(VALUES, seed=3)
    assert bootstrap_ci(VALUES, seed=3) != bootstrap_ci(VALUES, seed=4)


def test_interval_contains_the_mean() -> None:
    ci = bootstrap_ci(VALUES)
    assert ci is not None
    point, low, high = ci
    assert point == pytest.approx(0.7)
    assert low < 0.7 < high
    assert 0.0 <= low and high <= 1.0
    # a wider alpha gives a narrower interval
    narrow = bootstrap_ci(VALUES, alpha=0.5)
    assert narrow is not None and narrow.high - narrow.low < high - low


def test_constant_values_give_a_zero_width_interval() -> None:
    ci = bootstrap_ci([0.7] * 12)
    assert ci is not None and ci.low == ci.point == ci.high and ci.point == pytest.approx(0.7)
    assert bootstrap_ci([1.0]) == (1.0, 1.0, 1.0)


def test_none_values_are_ignored() -> None:
    ci = bootstrap_ci([1.0, None, 0.0, None])
    assert ci is not None and ci.point == 0.5
    assert bootstrap_ci([None, None]) is None
    assert bootstrap_ci([]) is None


def test_custom_statistic() -> None:
    ci = bootstrap_ci([1, 2, 3, 4, 100], stat=lambda a: float(np.median(a)), n_resamples=200)
    assert ci is not None and ci.point == 3.0 and ci.low <= 3.0 <= ci.high


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci(VALUES, n_resamples=0)
    with pytest.raises(ValueError):
        bootstrap_ci(VALUES, alpha=1.0)


def test_paired_diff_detects_a_clear_improvement() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.6, size=30)
    better = base + 0.25 + rng.normal(0, 0.05, size=30)
    result = paired_bootstrap_diff(list(base), list(better))
    assert result is not None
    diff, low, high, p = result
    assert diff == pytest.approx(float(np.mean(better - base)))
    assert 0 < low < diff < high
    assert p == 0.0  # no resample shows b <= a
    # the other way round: a reliable drop
    worse = paired_bootstrap_diff(list(better), list(base))
    assert worse is not None and worse.high < 0 and worse.p == 1.0
    # seeded
    assert paired_bootstrap_diff(list(base), list(better), seed=5) == \
        paired_bootstrap_diff(list(base), list(better), seed=5)


def test_paired_diff_no_change_and_noise() -> None:
    same = paired_bootstrap_diff(VALUES, VALUES)
    assert same == (0.0, 0.0, 0.0, 1.0)
    a = [1, 0, 1, 0, 1, 0, 1, 0]
    b = [0, 1, 1, 0, 0, 1, 1, 0]  # same mean, shuffled wins and losses
    noisy = paired_bootstrap_diff(a, b)
    assert noisy is not None and noisy.low < 0 < noisy.high and 0.2 < noisy.p < 0.9


def test_paired_diff_drops_incomplete_pairs() -> None:
    # pairs (1, 1) and (0, 1) remain: diffs [0, 1] -> mean 0.5
    result = paired_bootstrap_diff([1, None, 0, 0.5], [1, 0.3, 1, None])
    assert result is not None and result.diff == 0.5
    assert paired_bootstrap_diff([None], [1.0]) is None
    with pytest.raises(ValueError, match="same questions"):
        paired_bootstrap_diff([1, 2], [1])
