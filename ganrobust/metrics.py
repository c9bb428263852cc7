"""The metric registry: every per-update metric, defined once.

An entry says what the metric is called, what it means (the sentence the README table and the
report tables show), how it is formatted, what a higher value means, which per-sample field of
:func:`ganrobust.measure.update.measure_update` it summarises and how, and where it appears.
:func:`summarize` builds every summary from it; the report tables, TensorBoard, the training
rows, ``compare`` and the README table all read it. Adding a metric is its per-sample
computation in ``measure/update.py`` plus one entry here (tests/test_metrics.py checks that
the README table is :func:`readme_table`, and prints the table to paste when it is not).

Statistics, all over the probes of one measured update:

    share    over fake-classified probes (s < tau), Clopper–Pearson 95% interval; a per-sample share of
             draws (noise_flip) counts fractionally, with the interval of n_fake trials
    rate     over all probes, Clopper–Pearson 95% interval
    median   distribution-free interval from binomial ranks; NaN (not measured) dropped;
             ``over="fake"`` restricts to fake-classified probes, ``scaled`` divides by the
             width of the data range
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganrobust.stats import median_ci, clopper_pearson


class Statistic(str, enum.Enum):
    SHARE = "share"
    RATE = "rate"
    MEDIAN = "median"


#: where a metric appears
VIEWS = frozenset({
    "headline",       # the headline table of every report
    "summary",        # the audit's ``summary`` section (the update's numbers at a glance)
    "training",       # per measured step in the training rows (report figures, compare)
    "tensorboard",    # scalars ``ganrobust/<key>`` per measured step
    "compared",       # Odena's arguments 2 and 3 and the robust-D swap, side by side
    "over_training",  # compare: mean over the measured steps of each run
    "paired",         # differences with intervals (new batch, robust D, compare paired over steps)
})


@dataclass(frozen=True)
class Metric:
    key: str                   # in summaries, report.json and TensorBoard
    name: str                  # the label in report tables and verdicts
    meaning: str               # the sentence of the README table
    higher: str                # what a higher value says
    field: str                 # the per-sample field summarised
    statistic: Statistic
    percent: bool = False      # formatted as a percentage
    over: str = "all"          # "all" or "fake" (medians only)
    scaled: bool = False       # divided by the width of the data range
    views: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.views - VIEWS
        if unknown:
            raise ValueError(f"metric {self.key!r}: unknown views {sorted(unknown)}; expected among {sorted(VIEWS)}")
        if self.over not in ("all", "fake"):
            raise ValueError(f"metric {self.key!r}: expected over 'all' or 'fake', got {self.over!r}")

    def summarize(self, samples: dict[str, np.ndarray], fake: np.ndarray, width: float) -> dict[str, Any]:
        """This metric of one update's per-sample arrays, as a stored estimate."""
        values = samples[self.field]
        if self.statistic is Statistic.SHARE:
            hits = float(np.where(fake, values.astype(float), 0.0).sum())
            return clopper_pearson(hits, int(fake.sum())).to_dict()
        if self.statistic is Statistic.RATE:
            return clopper_pearson(int(values.sum()), len(fake)).to_dict()
        if self.over == "fake":
            values = values[fake]
        values = values[~np.isnan(values)] / (width if self.scaled else 1.0)
        return median_ci(values).to_dict()


METRICS: tuple[Metric, ...] = (
    Metric("aar", "accidental-attack rate",
           "share of fake-classified probes that the update turned real (`s < tau <= s_next`) with `linf(p) <= eps`",
           "more generator updates are accidental attacks", "accidental", Statistic.SHARE, percent=True,
           views=frozenset({"headline", "summary", "training", "tensorboard", "compared", "over_training", "paired"})),
    Metric("flip_rate", "flip rate", "share of fake-classified probes turned real, whatever the size of `p`",
           "the update turns more fakes real", "flip", Statistic.SHARE, percent=True,
           views=frozenset({"headline", "summary", "training", "tensorboard", "compared", "over_training", "paired"})),
    Metric("noise_flip_rate", "random-direction control",
           "the null control: the per-draw share of fake-classified probes flipped by a random direction `d` with "
           "`‖d‖₂ = ‖p‖₂` exactly and `x + d` inside the data range (found along the ray, not clamped short); with "
           "`noise_draws > 1` it is the mean over draws, never \"flipped by any draw\"",
           "D is fragile in every direction, not only along the update", "noise_flip", Statistic.SHARE, percent=True,
           views=frozenset({"headline", "summary", "training", "tensorboard", "compared", "over_training"})),
    Metric("small_rate", "small updates", "share of all probes whose update is small: `linf(p) <= eps` (and "
           "`l2(p) <= eps_l2` when set)", "more updates are within Odena's budget", "small", Statistic.RATE,
           percent=True),
    Metric("linf", "median ‖p‖∞", "size of `p = G_θ'(Z) − G_θ(Z)` in linf, as a fraction of the data range",
           "larger generator updates in pixel space", "linf", Statistic.MEDIAN, scaled=True,
           views=frozenset({"summary", "training", "tensorboard", "compared"})),
    Metric("l2", "median ‖p‖₂", "size of `p` in l2, as a fraction of the data range",
           "larger generator updates in pixel space", "l2", Statistic.MEDIAN, scaled=True,
           views=frozenset({"compared"})),
    Metric("cos_z", "median alignment z",
           "`cos(p, ∇ₓD)·sqrt(dim)`: ~N(0, 1) for random directions; large means the update follows D's gradient",
           "the update follows D's input gradient more closely", "cos_z", Statistic.MEDIAN,
           views=frozenset({"headline", "summary", "training", "tensorboard", "compared"})),
    Metric("efficiency", "median efficiency",
           "`(s_next − s) / (s_pgd − s)` over fake-classified probes: the update's score gain relative to L2 PGD "
           "within `‖p‖₂`", "the update gains as much score as the best attack of its size", "efficiency",
           Statistic.MEDIAN, over="fake", views=frozenset({"headline", "summary", "tensorboard", "compared"})),
    Metric("eps_star", "median eps*",
           "minimum adversarial linf norm of D at x (verified adversarial, never below the true minimum), as a "
           "fraction of the range, over fake-classified probes; the first `min_norm_probes` probes are attacked "
           "inside the whole scored batch, so under `bn='batch'` it belongs to the same decision function as `s`",
           "D is more robust", "eps_star", Statistic.MEDIAN, over="fake", scaled=True,
           views=frozenset({"summary", "training", "tensorboard"})),
    Metric("ratio", "median ‖p‖∞ / eps*",
           "`‖p‖∞ / eps_star` over fake-classified probes: ~1 means the update is as efficient as the best attack",
           "the update is further from the smallest attack", "ratio", Statistic.MEDIAN, over="fake",
           views=frozenset({"headline", "summary"})),
    Metric("score", "median score", "median of `s = D_t(x)` before the update", "D calls G's samples more real",
           "s", Statistic.MEDIAN),
    Metric("score_next", "median score after", "median of `s_next = D_t(x')` after the update",
           "the update raised D's score more", "s_next", Statistic.MEDIAN),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}


def view(name: str) -> tuple[Metric, ...]:
    """The metrics that appear in ``name`` (one of :data:`VIEWS`), in registry order."""
    if name not in VIEWS:
        raise ValueError(f"expected a view among {sorted(VIEWS)}, got {name!r}")
    return tuple(m for m in METRICS if name in m.views)


def keys(name: str) -> tuple[str, ...]:
    return tuple(m.key for m in view(name))


def summarize(samples: dict[str, np.ndarray], *, width: float) -> dict[str, Any]:
    """Every registered metric of one update's per-sample arrays: ``n``, ``n_fake`` and one stored
    estimate per metric, keyed as the registry says."""
    fake = samples["fake"].astype(bool)
    out: dict[str, Any] = {"n": int(len(fake)), "n_fake": int(fake.sum())}
    for metric in METRICS:
        out[metric.key] = metric.summarize(samples, fake, width)
    return out


def readme_table() -> str:
    """The README's table of per-update metrics, from the registry."""
    rows = ["| field | meaning | higher means |", "| --- | --- | --- |"]
    rows += [f"| `{m.key}` | {m.meaning} | {m.higher} |" for m in METRICS]
    return "\n".join(rows)
