"""The metric registry is the single definition of every per-update metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganrobust import metrics
from ganrobust.measure.update import measure_update
from ganrobust.scorer import Scorer
from ganrobust.stats import clopper_pearson

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_the_registry() -> None:
    table = metrics.readme_table()
    assert table in README.read_text(), ("README.md's table of per-update metrics differs from ganrobust/metrics.py; "
                                          "replace it with:\n" + table)


def test_a_summary_has_exactly_the_registered_metrics(linear_d, central_x) -> None:
    """measure_update's summary is keyed by the registry, in its order, and every view names metrics
    that exist."""
    summary = measure_update(Scorer(linear_d), central_x, central_x + 0.01, eps=8 / 255, efficiency_steps=0).summary
    assert list(summary) == ["n", "n_fake", *[m.key for m in metrics.METRICS]]
    for view in metrics.VIEWS:
        assert set(metrics.keys(view)) <= set(summary)


def test_each_statistic_is_computed_as_declared() -> None:
    """A share counts over fake-classified samples (fractional hits allowed), a rate over all, a
    median drops NaN, restricts to fake when declared and divides by the range when scaled."""
    fake = np.array([True, True, False, True])
    samples = {"fake": fake, "hit": np.array([1.0, 0.5, 1.0, 0.0]), "size": np.array([0.2, np.nan, 4.0, 0.6])}
    share = metrics.Metric("x", "x", "x", "x", "hit", metrics.Statistic.SHARE)
    assert share.summarize(samples, fake, 2.0) == clopper_pearson(1.5, 3).to_dict()
    rate = metrics.Metric("x", "x", "x", "x", "hit", metrics.Statistic.RATE)
    assert rate.summarize(samples, fake, 2.0)["n"] == 4
    median = metrics.Metric("x", "x", "x", "x", "size", metrics.Statistic.MEDIAN, over="fake", scaled=True)
    result = median.summarize(samples, fake, 2.0)
    assert result["n"] == 2 and result["value"] == pytest.approx(0.2)  # median of (0.2, 0.6) / 2


def test_a_view_or_registry_entry_with_a_typo_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown views"):
        metrics.Metric("x", "x", "x", "x", "f", metrics.Statistic.SHARE, views=frozenset({"headlines"}))
    with pytest.raises(ValueError, match="expected a view"):
        metrics.view("tensorbord")
