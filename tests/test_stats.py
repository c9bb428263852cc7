from __future__ import annotations

import math

import numpy as np
import pytest

from ganrobust.stats import mean_ci, median_ci, rate, wilson


def test_wilson_matches_the_textbook_value() -> None:
    est = wilson(8, 10)  # Wilson 95% interval for 8/10 is [0.4902, 0.9433]
    assert est.value == 0.8
    assert est.ci_low == pytest.approx(0.4902, abs=1e-4)
    assert est.ci_high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges_stay_in_the_unit_interval() -> None:
    assert wilson(0, 5).ci_low == 0.0 and wilson(0, 5).ci_high > 0.3
    assert wilson(5, 5).ci_high == 1.0 and wilson(5, 5).ci_low < 0.7
    assert math.isnan(wilson(0, 0).value) and wilson(0, 0).n == 0
    with pytest.raises(ValueError, match="successes <= n"):
        wilson(3, 2)


def test_rate_and_quantile_intervals_bracket_their_value() -> None:
    rng = np.random.default_rng(0)
    assert rate(rng.random(500) < 0.3).ci_low < 0.3 < rate(rng.random(500) < 0.3).ci_high
    values = rng.normal(size=400)
    med = median_ci(values)
    assert med.ci_low < med.value < med.ci_high and med.n == 400
    mean = mean_ci(values, seed=1)
    assert mean.ci_low < mean.value < mean.ci_high
    assert mean_ci(values, seed=1) == mean  # seeded bootstrap


def test_median_keeps_infinite_minimum_norms() -> None:
    assert median_ci([1.0, math.inf, math.inf]).value == math.inf
