"""Intervals for the numbers ganrobust reports: never a bare mean of a handful of samples.

Every interval here states its coverage, or is not given. The kinds, and what each covers:

* **rates over probes** (:func:`clopper_pearson`): Clopper–Pearson, exact: its coverage is at least
  95% for every true rate and every n (checked by exact binomial enumeration in tests/test_stats.py).
  Wilson's (:func:`wilson`, kept for callers) is not: at n = 64 its coverage falls to 0.84 near
  p = 0.003, where accidental-attack rates sit;
* **medians** (:func:`median_ci`): order statistics, the exact coverage carried in ``coverage``;
* **means over steps or seeds** (:func:`mean_ci`, :func:`seed_mean`, :func:`welch_difference`):
  Student t, exact for normal data;
* **pooled shares over clustered trials** (:func:`ganrobust.correlated.pooled_share`): Korn–Graubard, a Clopper–Pearson
  interval at the clusters' effective sample size; coverage measured by simulation >= 0.95 (within
  Monte-Carlo error) from 6 to 60 clusters;
* **differences of independent estimates** (:func:`mover_difference`): MOVER from the two intervals;
  **differences over the same probes** (:func:`ganrobust.correlated.paired_share_difference`): Newcombe's paired method,
  MOVER corrected for the correlation of the two estimates.

An interval over the probes or steps of one run covers the sampling of probes and steps, not
run-to-run variation: one training run is one draw; only an interval over seeds covers that.
Below :data:`MIN_N` observations no distribution-free interval reaches 95%, so none is given and
nothing built on it is called significant; a series without variation gives no interval ("no
variation observed") instead of a zero-width one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ganrobust.beta import beta_ppf

_Z95 = 1.959963984540054  # two-sided 95% normal quantile

# The smallest n at which a distribution-free 95% interval exists: the widest order-statistic
# interval for a median, [x_(1), x_(n)], covers with probability 1 − 2·2^−n, which is 0.9375
# at n = 5 and 0.969 at n = 6. Below it, no interval can claim 95% without assuming a
# distribution, so none is given over samples or steps and nothing is called significant.
MIN_N = 6
# Intervals over seeds assume normal per-seed numbers (Student t); t needs one degree of
# freedom, hence two seeds. Stated with every such interval.
MIN_SEEDS = 2

NO_VARIATION = "no variation observed"


#: the kinds of interval a report shows, one sentence each (a report's ``intervals`` section)
INTERVALS: dict[str, str] = {
    "rates": "over the probes of one update: Clopper–Pearson 95%, coverage >= 95% for every rate",
    "medians": "order-statistic interval, its exact coverage (>= 95%) stated; none below 6 values",
    "means over steps": "Student-t 95% over the measured steps of one run: it covers the sampling of steps, not "
                        "run-to-run variation (one training run is one draw; only intervals over seeds cover that)",
    "pooled persistence": "Korn–Graubard 95% over steps (Clopper–Pearson at the steps' effective sample size), "
                          "coverage >= 95% measured by simulation",
    "differences": "trained batch − fresh latents: MOVER 95% for independent samples; robust − standard D: Newcombe's "
                   "paired 95% (the same probes and update scored by both Ds)",
}


@dataclass(frozen=True)
class Estimate:
    """A number with its 95% interval and the count it rests on.

    ``ci_low``/``ci_high`` are NaN when no interval is given (``note`` says why);
    ``coverage`` is the interval's exact coverage where known and not the nominal 0.95
    (None: nominal 95%); ``clusters`` is the number of independent units (steps) an interval
    over clustered counts rests on.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    coverage: float | None = None
    clusters: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """value, ci_low, ci_high, n, and coverage/clusters/note only where set (so the records of
        plain estimates keep the four keys they always had)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("value", "ci_low", "ci_high", "n")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Estimate":
        """The inverse of :meth:`to_dict` after a JSON round trip (NaN as None, ±inf as "inf"/"-inf");
        reads dicts written before ``coverage``/``clusters``/``note`` existed."""
        def number(v: Any) -> float:
            return math.nan if v is None else float(v)

        coverage, clusters = d.get("coverage"), d.get("clusters")
        return cls(number(d["value"]), number(d["ci_low"]), number(d["ci_high"]), int(d["n"]),
                   None if coverage is None else float(coverage), None if clusters is None else int(clusters),
                   d.get("note"))

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a (n=0)"
        if not self.has_interval:
            return f"{self.value:.4g} (n={self.n}; no interval: {self.note or 'n below the minimum ' + str(MIN_N)})"
        cov = "" if self.coverage is None else f", coverage {self.coverage:.3f}"
        return f"{self.value:.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}] (n={self.n}{cov})"


def has_interval(d: dict[str, Any] | Estimate | None) -> bool:
    """Whether a (stored) estimate carries a usable interval: both ends present and not NaN."""
    if d is None:
        return False
    e = d if isinstance(d, Estimate) else None
    if e is None:
        if not d.get("n") or d.get("value") is None or d.get("ci_low") is None or d.get("ci_high") is None:
            return False
        e = Estimate.from_dict(d)
    return e.n > 0 and e.has_interval


def _below_min(value: float, n: int, minimum: int = MIN_N) -> Estimate:
    return Estimate(value, math.nan, math.nan, n, note=f"n={n} is below the minimum {minimum}")


def wilson(successes: float, n: int, z: float = _Z95) -> Estimate:
    """Rate ``k/n`` with the Wilson score interval. Not what ganrobust reports (its coverage drops
    below 95% for small rates: 0.84 at n = 64, p ≈ 0.003); kept for callers and comparisons.

    center = (k + z²/2) / (n + z²),  half = z·sqrt(k(n−k)/n + z²/4) / (n + z²)
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"expected 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(math.nan, 0.0, 1.0, 0)
    k = float(successes)
    denom = n + z * z
    center = (k + z * z / 2) / denom
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / denom
    return Estimate(k / n, max(0.0, center - half), min(1.0, center + half), n)


def clopper_pearson(successes: float, n: float, level: float = 0.95) -> Estimate:
    """Rate ``k/n`` with the Clopper–Pearson ("exact") interval, coverage >= ``level`` for every p:

        low  = Beta⁻¹(α/2; k, n − k + 1)    (0 when k = 0)
        high = Beta⁻¹(1 − α/2; k + 1, n − k)  (1 when k = n),  α = 1 − level

    A fractional k (a per-sample share of draws) and a fractional n (an effective sample size,
    :func:`pooled_share`) enter the Beta quantiles as they are. n is reported rounded.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"expected 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(math.nan, 0.0, 1.0, 0)
    k, alpha = float(successes), 1.0 - level
    low = 0.0 if k <= 0 else beta_ppf(alpha / 2, k, n - k + 1)
    high = 1.0 if k >= n else beta_ppf(1 - alpha / 2, k + 1, n - k)
    return Estimate(k / n, low, high, int(round(n)))


def rate(mask: Sequence[bool] | np.ndarray) -> Estimate:
    """Clopper–Pearson estimate of the share of True in a boolean mask."""
    arr = np.asarray(mask, dtype=bool)
    return clopper_pearson(int(arr.sum()), int(arr.size))


def median_ranks(n: int, level: float = 0.95) -> tuple[int, float] | None:
    """The symmetric order-statistic interval ``[x_(k), x_(n+1−k)]`` (1-based ranks) for a median.

    It covers the population median of any continuous distribution with the exact probability
    ``1 − 2·P(Binomial(n, 1/2) <= k − 1)``; k is the largest rank keeping that >= level.
    Returns (k, coverage), or None when even k = 1 falls short (n < MIN_N).
    """
    best = None
    below, term = 0, 1  # Σ_{i<k} C(n, i) and C(n, k−1), in integers: exact, no scipy (issue 22)
    for k in range(1, n // 2 + 1):
        below, term = below + term, term * (n - k + 1) // k
        coverage = 1.0 - 2.0 * (below / 2 ** n)  # 1 − 2·P(Binomial(n, 1/2) <= k − 1)
        if coverage < level:
            break
        best = (k, coverage)
    return best


def median_ci(values: Sequence[float] | np.ndarray) -> Estimate:
    """Median with a distribution-free interval from binomial order statistics (:func:`median_ranks`),
    its exact coverage in ``coverage``; no interval below ``MIN_N`` values.

    Non-finite values (an attack that never succeeded: ``inf``) are kept, so the median of a
    mostly-robust set is honestly ``inf``.
    """
    arr = np.sort(np.asarray(values, dtype=float).ravel())
    arr = arr[~np.isnan(arr)]
    n = arr.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    ranks = median_ranks(n)
    if ranks is None:
        return _below_min(float(np.median(arr)), n)
    k, coverage = ranks
    return Estimate(float(np.median(arr)), float(arr[k - 1]), float(arr[n - k]), n, coverage=coverage)


def mean_ci(values: Sequence[float] | np.ndarray, *, min_n: int = MIN_N,
            bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean with the Student-t 95% interval ``mean ± t_{0.975, n−1}·s/√n`` (s: sample standard
    deviation); exact for normal data, and no interval below ``min_n`` values or when every
    value is the same (s = 0: "no variation observed", not a zero-width interval). ``bounds``
    clips the interval to the values' possible range (a mean of rates is never below 0)."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    n = arr.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(arr.mean())
    if n < max(min_n, 2):
        return _below_min(mean, n, max(min_n, 2))
    if arr.max() == arr.min():  # exact: the float std of identical values can be 1e-17 rather than 0
        return Estimate(mean, math.nan, math.nan, n, note=NO_VARIATION)
    s = float(arr.std(ddof=1))
    from scipy import stats as _sp  # lazy: scipy.stats costs ~0.8 s at import

    half = float(_sp.t.ppf(0.975, n - 1)) * s / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean, low, high, n)


def seed_mean(values: Sequence[float] | np.ndarray, *, bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean over seeds (independent runs) with its Student-t 95% interval, from ``MIN_SEEDS`` seeds,
    clipped to ``bounds`` (the number's possible range)."""
    return mean_ci(values, min_n=MIN_SEEDS, bounds=bounds)


def welch_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Estimate:
    """``mean(a) − mean(b)`` over independent runs with the Welch t 95% interval:

        se = sqrt(s_a²/n_a + s_b²/n_b),  df = se⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1))
        d ± t_{0.975, df}·se

    No interval below ``MIN_SEEDS`` runs on either side or when neither side varies; n = min(n_a, n_b).
    """
    xa, xb = (np.asarray(v, dtype=float).ravel() for v in (a, b))
    xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
    na, nb = xa.size, xb.size
    if na == 0 or nb == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    d = float(xa.mean() - xb.mean())
    if min(na, nb) < MIN_SEEDS:
        return _below_min(d, min(na, nb), MIN_SEEDS)
    if xa.max() == xa.min() and xb.max() == xb.min():
        return Estimate(d, math.nan, math.nan, min(na, nb), note=NO_VARIATION)
    va, vb = float(xa.var(ddof=1)) / na, float(xb.var(ddof=1)) / nb
    if va + vb == 0.0:
        return Estimate(d, math.nan, math.nan, min(na, nb), note=NO_VARIATION)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    from scipy import stats as _sp  # lazy: scipy.stats costs ~0.8 s at import

    half = float(_sp.t.ppf(0.975, df)) * se
    return Estimate(d, d - half, d + half, min(na, nb))


def mover_difference(a: Estimate, b: Estimate) -> Estimate:
    """``a − b`` with the MOVER 95% interval from the two estimates' own intervals (Newcombe
    1998, method 10, for independent rates; Zou & Donner 2008 in general). Assumes independence:
    for the same units measured twice use :func:`ganrobust.correlated.paired_share_difference`.

        low  = (a − b) − sqrt((a − a_low)² + (b_high − b)²)
        high = (a − b) + sqrt((a_high − a)² + (b − b_low)²)

    No interval when either side has none (below ``MIN_N``, or no variation).
    """
    d = a.value - b.value
    if not (a.has_interval and b.has_interval) or min(a.n, b.n) < 1:
        return Estimate(d, math.nan, math.nan, min(a.n, b.n), note="a side has no interval")
    low = d - math.sqrt((a.value - a.ci_low) ** 2 + (b.ci_high - b.value) ** 2)
    high = d + math.sqrt((a.ci_high - a.value) ** 2 + (b.value - b.ci_low) ** 2)
    return Estimate(d, low, high, min(a.n, b.n))


def significant(d: Estimate | dict[str, Any] | None, *, min_n: int = MIN_N) -> bool:
    """A difference is significant at 95% only if it rests on at least ``min_n`` (``MIN_N``; over
    seeds ``MIN_SEEDS``), has an interval, and that interval excludes 0."""
    if not has_interval(d):
        return False
    e = d if isinstance(d, Estimate) else Estimate.from_dict(d)  # type: ignore[arg-type]
    return bool(e.n >= min_n and (e.ci_low > 0 or e.ci_high < 0))


def difference(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """``a − b`` of two stored independent estimates with its MOVER interval and whether it is
    :func:`significant`; None where either side is missing, empty or infinite."""
    ea, eb = (None if not d or not d.get("n") or d.get("value") is None else Estimate.from_dict(d) for d in (a, b))
    if ea is None or eb is None or not (math.isfinite(ea.value) and math.isfinite(eb.value)):
        return None
    d = mover_difference(ea, eb)
    return {**d.to_dict(), "significant": significant(d)}
