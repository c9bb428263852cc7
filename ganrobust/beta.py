"""The Beta distribution's CDF and quantile in plain Python, for Clopper–Pearson intervals.

The hook reports a Clopper–Pearson interval for every rate of every measured step; taking the
Beta quantile from ``scipy.stats`` would load scipy (~0.6 s) into every watched training loop.
The regularized incomplete beta function is evaluated by its continued fraction (modified Lentz),
and inverted by Newton's method inside a bisection bracket, so the quantile is accurate to about
1e-12 for any real ``a, b > 0`` (tests/test_stats.py checks it against scipy).
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def _log_front(a: float, b: float, x: float) -> float:
    """log of x^a (1 − x)^b / B(a, b)."""
    return math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)


def beta_cdf(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function: P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(_log_front(a, b, x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b): the x with I_x(a, b) = q (a, b > 0, 0 <= q <= 1)."""
    if not (a > 0 and b > 0 and 0.0 <= q <= 1.0):
        raise ValueError(f"expected a > 0, b > 0 and 0 <= q <= 1, got a={a}, b={b}, q={q}")
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    x = min(max(a / (a + b), 1e-12), 1.0 - 1e-12)  # start at the mean
    for _ in range(200):
        f = beta_cdf(x, a, b) - q
        if f == 0.0:
            return x
        if f < 0:
            lo = x
        else:
            hi = x
        if hi - lo <= 1e-15 * max(x, 1e-300):
            break
        log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        density = math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta)
        step = x - f / density if density > 0 else math.nan
        x = step if lo < step < hi else 0.5 * (lo + hi)  # Newton inside the bracket, else bisect
    return x
