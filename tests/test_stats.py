from __future__ import annotations

import math

import numpy as np
import pytest

from scipy import stats as sp

from ganrobust.correlated import paired_mover_difference, paired_phi, paired_share_difference, pooled_share
from ganrobust.stats import (MIN_N, NO_VARIATION, Estimate, clopper_pearson, mean_ci, median_ci, median_ranks,
                             mover_difference, rate, seed_mean, significant, welch_difference, wilson)


def test_clopper_pearson_matches_the_textbook_value() -> None:
    est = clopper_pearson(8, 10)  # the exact 95% interval for 8/10 is [0.4439, 0.9748]
    assert est.value == 0.8 and est.n == 10
    assert est.ci_low == pytest.approx(0.4439, abs=1e-4) and est.ci_high == pytest.approx(0.9748, abs=1e-4)
    assert clopper_pearson(0, 64).ci_low == 0.0 and clopper_pearson(0, 64).ci_high == pytest.approx(1 - 0.025 ** (1 / 64))
    assert clopper_pearson(64, 64).ci_high == 1.0 and clopper_pearson(64, 64).ci_low == pytest.approx(0.025 ** (1 / 64))
    assert math.isnan(clopper_pearson(0, 0).value)
    with pytest.raises(ValueError, match="successes <= n"):
        clopper_pearson(3, 2)


def _exact_coverage(interval, n: int, ps: np.ndarray) -> np.ndarray:
    """P(low(K) <= p <= high(K)), K ~ Binomial(n, p), summed over every k = 0..n: no simulation."""
    bounds = [interval(k, n) for k in range(n + 1)]
    low, high = np.array([e.ci_low for e in bounds]), np.array([e.ci_high for e in bounds])
    ks = np.arange(n + 1)
    return np.array([float((sp.binom.pmf(ks, n, p) * ((low <= p) & (p <= high))).sum()) for p in ps])


@pytest.mark.parametrize("n", [16, 64, 256])
def test_reported_rates_cover_95_percent_for_every_small_rate(n) -> None:
    """Exact binomial enumeration over p in [0.0005, 0.06], where accidental-attack rates sit: the
    interval every rate is reported with (``rate``, the metric registry's shares) never covers less
    than 95%. Wilson's, reported before, covers 0.84 at its worst there."""
    from ganrobust import metrics

    ps = np.geomspace(0.0005, 0.06, 200)
    assert _exact_coverage(lambda k, m: rate(np.arange(m) < k), n, ps).min() >= 0.95
    assert _exact_coverage(clopper_pearson, n, ps).min() >= 0.95
    assert _exact_coverage(wilson, n, ps).min() < 0.85  # why Wilson is no longer used
    fake = np.ones(n, dtype=bool)
    for k in (0, 1, 3):  # the registry's share statistic is this interval
        samples = {"accidental": np.arange(n) < k}
        assert metrics.BY_KEY["aar"].summarize(samples, fake, 2.0) == clopper_pearson(k, n).to_dict()


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


def _clustered(rng: np.random.Generator, clusters: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps whose flips share one update: 1–11 flips a step, per-step persistence ~ Beta(a, b)."""
    totals = rng.integers(1, 12, size=clusters)
    return rng.binomial(totals, rng.beta(a, b, size=clusters)), totals


@pytest.mark.parametrize("clusters,a,b", [(6, 1, 2), (10, 1, 9), (30, 1, 2), (30, 5, 5)])
def test_pooled_share_holds_95_percent_over_clustered_steps(clusters, a, b) -> None:
    """The pooled-persistence interval is labelled 95%: measured here by simulation, as the docstring
    states (a percentile bootstrap over steps, used before, covered 0.85 at 6 steps and 0.91 at 30)."""
    rng = np.random.default_rng(clusters * 10 + a)
    reps, hits = 800, 0
    for _ in range(reps):
        est = pooled_share(*_clustered(rng, clusters, a, b))
        hits += est.ci_low <= a / (a + b) <= est.ci_high
    assert hits / reps >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)


def test_pooled_share_respects_clustering_by_step() -> None:
    rng = np.random.default_rng(3)
    widths, naive = [], []
    for _ in range(200):
        successes, totals = _clustered(rng, 30, 1, 2)
        est = pooled_share(successes, totals)
        w = clopper_pearson(int(successes.sum()), int(totals.sum()))
        widths.append(est.ci_high - est.ci_low)
        naive.append(w.ci_high - w.ci_low)
    assert np.mean(widths) > 1.2 * np.mean(naive)  # wider than an interval that treats flips as independent
    few = pooled_share([1, 0, 2, 1, 0], [2, 1, 2, 3, 1])
    assert few.value == pytest.approx(4 / 9) and few.n == 9 and few.clusters == 5 and not few.has_interval
    assert pooled_share([0, 0], [0, 0]).n == 0


def test_pooled_share_is_the_korn_graubard_formula() -> None:
    k, t = np.array([1, 0, 2, 1, 0, 3, 1]), np.array([2, 1, 2, 3, 1, 4, 5])
    r, c, n = 8 / 18, 7, 18
    var = c / (c - 1) * sum((ki - r * ti) ** 2 for ki, ti in zip(k, t)) / n ** 2
    n_eff = min(n, r * (1 - r) / var) * (sp.norm.ppf(0.975) / sp.t.ppf(0.975, c - 1)) ** 2
    est = pooled_share(k, t)
    assert est.value == pytest.approx(r) and est.n == 18 and est.clusters == 7
    assert est.ci_low == pytest.approx(sp.beta.ppf(0.025, r * n_eff, n_eff - r * n_eff + 1), rel=1e-9)
    assert est.ci_high == pytest.approx(sp.beta.ppf(0.975, r * n_eff + 1, n_eff - r * n_eff), rel=1e-9)


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


# -- paired differences: the robust-D swap scores the same probes with two Ds ------------------

def _table(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.r_[np.ones(both), np.ones(only_a), np.zeros(only_b), np.zeros(neither)]
    b = np.r_[np.ones(both), np.zeros(only_a), np.ones(only_b), np.zeros(neither)]
    return a, b


def test_paired_difference_is_newcombes_method_10_worked_by_hand() -> None:
    """A = 10 (both), B = 15 (a only), C = 5 (b only), D = 20 (neither), n = 50:
    a = 25/50, b = 15/50, AD − BC = 125 > n/2, so φ = (125 − 25) / sqrt(25·25·15·35) = 0.174574;
    Clopper–Pearson: a in [0.355273, 0.644727], b in [0.178618, 0.446082];
    low  = 0.2 − sqrt(0.144727² − 2φ·0.144727·0.146082 + 0.146082²) = 0.013173
    high = 0.2 + sqrt(0.144727² − 2φ·0.144727·0.121382 + 0.121382²) = 0.371889"""
    a, b = _table(10, 15, 5, 20)
    ones = np.ones(50)
    assert paired_phi(a, ones, b, ones) == pytest.approx(100 / math.sqrt(25 * 25 * 15 * 35), rel=1e-12)
    pa, pb = clopper_pearson(25, 50), clopper_pearson(15, 50)
    assert (pa.ci_low, pa.ci_high, pb.ci_low, pb.ci_high) == pytest.approx((0.355273, 0.644727, 0.178618, 0.446082),
                                                                            abs=1e-6)
    d = paired_share_difference(a, ones, b, ones)
    assert d.value == pytest.approx(0.2) and d.n == 50
    assert d.ci_low == pytest.approx(0.013173, abs=1e-6) and d.ci_high == pytest.approx(0.371889, abs=1e-6)
    # φ's continuity correction: AD − BC within n/2 of 0 counts as no correlation; negative is kept
    a, b = _table(3, 10, 10, 27)  # AD − BC = 81 − 100 = −19
    assert paired_phi(a, np.ones(50), b, np.ones(50)) == pytest.approx(-19 / math.sqrt(13 * 37 * 13 * 37))
    a, b = _table(5, 10, 10, 25)  # AD − BC = 125 − 100 = 25 = n/2
    assert paired_phi(a, np.ones(50), b, np.ones(50)) == 0.0


def test_paired_differs_from_the_unpaired_interval_on_correlated_data() -> None:
    """Two Ds that agree on most probes: the paired interval is much narrower than MOVER for
    independent samples, and only it sees that a 6-point difference over 200 probes is real."""
    a, b = _table(20, 12, 0, 168)
    ones = np.ones(200)
    paired = paired_share_difference(a, ones, b, ones)
    unpaired = mover_difference(clopper_pearson(32, 200), clopper_pearson(20, 200))
    assert paired.value == unpaired.value == pytest.approx(0.06)
    assert paired.ci_high - paired.ci_low < 0.75 * (unpaired.ci_high - unpaired.ci_low)
    assert significant(paired) and not significant(unpaired)
    # uncorrelated data: φ = 0 and the paired interval is MOVER's
    zero = paired_mover_difference(clopper_pearson(32, 200), clopper_pearson(20, 200), 0.0)
    assert (zero.ci_low, zero.ci_high) == pytest.approx((unpaired.ci_low, unpaired.ci_high))


def test_paired_difference_holds_its_coverage_on_correlated_pairs() -> None:
    """Simulated pairs (p_a = 0.08, p_b = 0.05, strongly correlated, n = 200): the paired interval
    covers the true difference at least 95% of the time."""
    rng = np.random.default_rng(11)
    reps, hits, n = 1000, 0, 200
    cells = rng.multinomial(n, [0.045, 0.035, 0.005, 0.915], size=reps)  # both, a only, b only, neither
    for both, only_a, only_b, neither in cells:
        a, b = _table(both, only_a, only_b, neither)
        d = paired_share_difference(a, np.ones(n), b, np.ones(n))
        hits += d.ci_low <= 0.03 <= d.ci_high
    assert hits / reps >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)


def test_paired_shares_over_each_ds_own_fake_probes() -> None:
    """Each side's share is over its own denominator (each D's fake-classified probes): the value
    is Σ hits/Σ over per side, and the interval contains it."""
    rng = np.random.default_rng(2)
    over_a, over_b = rng.random(300) < 0.6, rng.random(300) < 0.7
    hits_a = over_a & (rng.random(300) < 0.2)
    hits_b = over_b & (hits_a | (rng.random(300) < 0.05))
    d = paired_share_difference(hits_a, over_a, hits_b, over_b)
    assert d.value == pytest.approx(hits_a.sum() / over_a.sum() - hits_b.sum() / over_b.sum())
    assert d.ci_low < d.value < d.ci_high and d.n == min(over_a.sum(), over_b.sum())
    empty = paired_share_difference(hits_a, np.zeros(300), hits_b, over_b)
    assert not empty.has_interval


# -- per-class rates against an independent count -------------------------------------------

def test_by_class_rates_are_each_classes_own_count() -> None:
    from ganrobust.measure.update import by_class

    rng = np.random.default_rng(5)
    n = 400
    samples = {"label": rng.integers(0, 7, n), "fake": rng.random(n) < 0.7}
    samples["flip"] = samples["fake"] & (rng.random(n) < 0.3)
    samples["accidental"] = samples["flip"] & (rng.random(n) < 0.5)
    rows = by_class(samples, 8)  # class 7 has no probe
    assert [r["class"] for r in rows] == list(range(8))
    for r in rows:
        mine = [i for i in range(n) if samples["label"][i] == r["class"]]
        fakes = [i for i in mine if samples["fake"][i]]
        flips = sum(1 for i in fakes if samples["flip"][i])
        accidents = sum(1 for i in fakes if samples["accidental"][i])
        assert r["n"] == len(mine) and r["n_fake"] == len(fakes)
        if fakes:
            assert r["flip_rate"]["value"] == pytest.approx(flips / len(fakes))
            assert r["aar"]["value"] == pytest.approx(accidents / len(fakes))
            assert r["flip_rate"] == clopper_pearson(flips, len(fakes)).to_dict()
            assert r["aar"] == clopper_pearson(accidents, len(fakes)).to_dict()
        else:
            assert r["flip_rate"]["n"] == 0


def test_the_robust_swap_difference_is_paired_over_the_same_probes() -> None:
    """The audit's robust − standard difference: each D's share over its own fake-classified probes,
    with the paired interval of those per-probe arrays (not MOVER of the two summaries)."""
    from ganrobust.measure.sections.robust_discriminator import paired_differences

    rng = np.random.default_rng(9)
    n = 300
    fake_std = rng.random(n) < 0.8
    flip_std = fake_std & (rng.random(n) < 0.1)
    fake_rob = fake_std | (rng.random(n) < 0.05)
    flip_rob = fake_rob & (flip_std | (rng.random(n) < 0.03))  # the robust D mostly flips where the standard does
    robust = {"fake": fake_rob, "flip": flip_rob, "accidental": flip_rob & (rng.random(n) < 0.5)}
    standard = {"fake": fake_std, "flip": flip_std, "accidental": flip_std & robust["accidental"]}
    out = paired_differences(robust, standard)
    for key, field in (("flip_rate", "flip"), ("aar", "accidental")):
        d = out[key]
        expected = paired_share_difference(robust[field], fake_rob, standard[field], fake_std)
        assert d["value"] == pytest.approx(robust[field][fake_rob].mean() - standard[field][fake_std].mean())
        assert (d["ci_low"], d["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high), abs=1e-12)
        assert "paired" in d["method"] and d["significant"] == significant(expected)
        unpaired = mover_difference(clopper_pearson(int(robust[field][fake_rob].sum()), int(fake_rob.sum())),
                                    clopper_pearson(int(standard[field][fake_std].sum()), int(fake_std.sum())))
        assert d["ci_high"] - d["ci_low"] < unpaired.ci_high - unpaired.ci_low  # correlated: narrower


@pytest.mark.parametrize("n", [1, 5, 64, 1000, 100_000])
def test_the_beta_quantile_behind_clopper_pearson_is_scipys(n) -> None:
    """Clopper–Pearson's bounds come from ganrobust.beta (so a watched loop never loads scipy): its
    quantiles equal scipy's to 1e-9 relative, for integer and fractional k (shares of draws)."""
    from scipy import stats as sp

    from ganrobust.beta import beta_cdf, beta_ppf

    for k in sorted({0.5, 1, 2, n / 3, n - 1, n - 0.5}):
        if not 0 < k < n:
            continue
        for q, a, b in ((0.025, k, n - k + 1), (0.975, k + 1, n - k)):
            assert beta_ppf(q, a, b) == pytest.approx(sp.beta.ppf(q, a, b), rel=1e-9, abs=1e-300)
            x = beta_ppf(q, a, b)
            assert beta_cdf(x, a, b) == pytest.approx(sp.beta.cdf(x, a, b), rel=1e-9)
