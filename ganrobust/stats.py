"""Intervals for the numbers ganrobust reports: never a bare mean of a handful of samples."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

_Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A number with its 95% interval and the count it rests on."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Estimate":
        """The inverse of :meth:`to_dict` after a JSON round trip (NaN as None, ±inf as "inf"/"-inf")."""
        def number(v: Any) -> float:
            return math.nan if v is None else float(v)

        return cls(number(d["value"]), number(d["ci_low"]), number(d["ci_high"]), int(d["n"]))

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a (n=0)"
        return f"{self.value:.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}] (n={self.n})"


def wilson(successes: int, n: int, z: float = _Z95) -> Estimate:
    """Rate ``k/n`` with the Wilson score interval (well-behaved at 0, 1 and small n).

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


def rate(mask: Sequence[bool] | np.ndarray) -> Estimate:
    """Wilson estimate of the share of True in a boolean mask."""
    arr = np.asarray(mask, dtype=bool)
    return wilson(int(arr.sum()), int(arr.size))


def median_ci(values: Sequence[float] | np.ndarray, z: float = _Z95) -> Estimate:
    """Median with a distribution-free interval from binomial order statistics.

    The ranks ``n/2 ± z·sqrt(n)/2`` bracket the population median with ~95% coverage;
    non-finite values (an attack that never succeeded: ``inf``) are kept, so the median of
    a mostly-robust set is honestly ``inf``.
    """
    arr = np.sort(np.asarray(values, dtype=float).ravel())
    arr = arr[~np.isnan(arr)]
    n = arr.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    half = z * math.sqrt(n) / 2
    lo_rank = max(0, int(math.floor(n / 2 - half)))
    hi_rank = min(n - 1, int(math.ceil(n / 2 + half)))
    return Estimate(float(np.median(arr)), float(arr[lo_rank]), float(arr[hi_rank]), n)


def mean_ci(values: Sequence[float] | np.ndarray, *, seed: int = 0, n_boot: int = 2000) -> Estimate:
    """Mean with a percentile-bootstrap 95% interval (seeded, so reports are reproducible)."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    n = arr.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if n == 1:
        return Estimate(float(arr[0]), float(arr[0]), float(arr[0]), 1)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return Estimate(float(arr.mean()), float(lo), float(hi), n)


def mover_difference(a: Estimate, b: Estimate) -> Estimate:
    """``a − b`` with the MOVER 95% interval from the two estimates' own intervals (Newcombe
    1998, method 10, for Wilson rates; Zou & Donner 2008 in general). Assumes independence.

        low  = (a − b) − sqrt((a − a_low)² + (b_high − b)²)
        high = (a − b) + sqrt((a_high − a)² + (b − b_low)²)
    """
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.ci_low) ** 2 + (b.ci_high - b.value) ** 2)
    high = d + math.sqrt((a.ci_high - a.value) ** 2 + (b.value - b.ci_low) ** 2)
    return Estimate(d, low, high, min(a.n, b.n))
