from __future__ import annotations

import math

import numpy as np
import pytest

from ganrobust.stats import (MIN_N, NO_VARIATION, Estimate, mean_ci, median_ci, median_ranks, mover_difference,
                             pooled_share, rate, seed_mean, significant, welch_difference, wilson)


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
    mean = mean_ci(values)
    assert mean.ci_low < mean.value < mean.ci_high


def test_median_keeps_infinite_minimum_norms() -> None:
    assert median_ci([1.0, math.inf, math.inf]).value == math.inf


# -- minimum n, exact coverage, no zero-width intervals (issue 10, item 5) ----------------

REPS = 4000


def _mc_tolerance(p: float) -> float:
    """Three Monte-Carlo standard errors of a coverage estimated from REPS draws."""
    return 3 * math.sqrt(p * (1 - p) / REPS)


def test_below_the_minimum_n_no_interval_is_given() -> None:
    for n in range(1, MIN_N):
        values = np.arange(n, dtype=float)
        for est in (median_ci(values), mean_ci(values)):
            assert est.n == n and not est.has_interval and "below" in est.note
    assert median_ci(np.arange(MIN_N, dtype=float)).has_interval
    assert mean_ci(np.arange(MIN_N, dtype=float)).has_interval
    # n = 1: a value, never a zero-width interval
    one = mean_ci([0.5])
    assert one.value == 0.5 and math.isnan(one.ci_low) and math.isnan(one.ci_high)


def test_a_series_without_variation_has_no_interval() -> None:
    est = mean_ci([0.1] * 20)
    assert est.value == pytest.approx(0.1) and est.n == 20 and not est.has_interval and est.note == NO_VARIATION
    assert not significant(est)


def test_median_ranks_come_from_the_exact_binomial() -> None:
    assert median_ranks(5) is None  # 1 − 2/32 = 0.9375 < 0.95
    k, coverage = median_ranks(6)
    assert k == 1 and coverage == pytest.approx(1 - 2 / 64)
    for n in (6, 9, 17, 40, 101):
        k, coverage = median_ranks(n)
        below = sum(math.comb(n, i) for i in range(k)) / 2 ** n
        assert coverage == pytest.approx(1 - 2 * below) and coverage >= 0.95
        wider_below = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
        assert 1 - 2 * wider_below < 0.95  # k is the tightest rank that keeps 95%
    assert median_ci(np.arange(9.0)).coverage == pytest.approx(median_ranks(9)[1])


@pytest.mark.parametrize("n", [6, 8, 15])
@pytest.mark.parametrize("dist", ["normal", "exponential"])
def test_median_interval_holds_its_stated_coverage(n, dist) -> None:
    rng = np.random.default_rng(n)
    draw = (lambda: rng.normal(size=n)) if dist == "normal" else (lambda: rng.exponential(size=n))
    true_median = 0.0 if dist == "normal" else math.log(2)
    hits, claimed = 0, median_ranks(n)[1]
    for _ in range(REPS):
        est = median_ci(draw())
        hits += est.ci_low <= true_median <= est.ci_high
    assert abs(hits / REPS - claimed) < _mc_tolerance(claimed)


@pytest.mark.parametrize("n", [6, 10, 30])
def test_mean_interval_holds_95_percent_on_normal_data(n) -> None:
    rng = np.random.default_rng(100 + n)
    hits = sum(est.ci_low <= 1.0 <= est.ci_high for est in (mean_ci(rng.normal(1.0, 2.0, size=n)) for _ in range(REPS)))
    assert abs(hits / REPS - 0.95) < _mc_tolerance(0.95)


def test_seed_means_and_welch_differences_hold_95_percent() -> None:
    rng = np.random.default_rng(7)
    seed_hits = welch_hits = 0
    for _ in range(REPS):
        a, b = rng.normal(0.3, 0.05, size=3), rng.normal(0.1, 0.02, size=4)
        s, d = seed_mean(a), welch_difference(a, b)
        seed_hits += s.ci_low <= 0.3 <= s.ci_high
        welch_hits += d.ci_low <= 0.2 <= d.ci_high
    assert abs(seed_hits / REPS - 0.95) < _mc_tolerance(0.95)
    # Welch–Satterthwaite is an approximation: within MC error plus 1 point
    assert abs(welch_hits / REPS - 0.95) < _mc_tolerance(0.95) + 0.01
    assert not seed_mean([0.4]).has_interval and not welch_difference([0.4], [0.1, 0.2]).has_interval
    assert welch_difference([0.4, 0.4], [0.1, 0.1]).note == NO_VARIATION


def test_pooled_share_respects_clustering_by_step() -> None:
    # steps whose flips share one update: per-step persistence p_step ~ Beta(1, 2), mean 1/3
    rng = np.random.default_rng(3)
    hits, widths, naive = 0, [], []
    for _ in range(400):
        totals = rng.integers(1, 12, size=30)
        successes = rng.binomial(totals, rng.beta(1, 2, size=30))
        est = pooled_share(successes, totals, seed=1, n_boot=400)
        hits += est.ci_low <= 1 / 3 <= est.ci_high
        w = wilson(int(successes.sum()), int(totals.sum()))
        widths.append(est.ci_high - est.ci_low)
        naive.append(w.ci_high - w.ci_low)
    assert hits / 400 >= 0.90  # a percentile bootstrap over 30 clusters: close to, not above, nominal
    assert np.mean(widths) > 1.2 * np.mean(naive)  # wider than an interval that treats flips as independent
    few = pooled_share([1, 0, 2, 1, 0], [2, 1, 2, 3, 1])
    assert few.value == pytest.approx(4 / 9) and few.n == 9 and few.clusters == 5 and not few.has_interval
    assert pooled_share([0, 0], [0, 0]).n == 0


def test_one_observation_per_side_is_never_significant() -> None:
    d = mover_difference(mean_ci([0.5]), mean_ci([0.25]))
    assert d.value == pytest.approx(0.25) and not d.has_interval and not significant(d)


def test_estimates_written_before_the_new_fields_read_back() -> None:
    old = {"value": 0.5, "ci_low": 0.2, "ci_high": None, "n": 3}
    e = Estimate.from_dict(old)
    assert e.n == 3 and e.coverage is None and e.note is None and not e.has_interval
    assert Estimate.from_dict(median_ci(np.arange(20.0)).to_dict()) == median_ci(np.arange(20.0))


def test_a_mean_of_rates_keeps_its_interval_inside_the_possible_range() -> None:
    from ganrobust.stats import seed_mean

    loose = mean_ci([0.0, 0.0, 0.0, 0.0, 0.0, 0.3])
    assert loose.ci_low < 0  # the t interval alone leaves [0, 1]
    clipped = mean_ci([0.0, 0.0, 0.0, 0.0, 0.0, 0.3], bounds=(0.0, 1.0))
    assert clipped.ci_low == 0.0 and clipped.ci_high == loose.ci_high and clipped.value == loose.value
    assert seed_mean([0.0, 0.41, 0.10], bounds=(0.0, 1.0)).ci_low == 0.0
