"""The per-update measurement on cases whose answer is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganrobust import Scorer
from ganrobust.attacks import MinNorm
from ganrobust.measure import measure_update


def _setup(linear_d, central_x, scale: float):
    scorer = Scorer(linear_d)
    w = linear_d.w.reshape(central_x.shape[1:])
    p = scale * w / w.norm()  # the update moves every sample along the gradient
    return scorer, central_x, (central_x + p).clamp(-1, 1), p


def test_update_along_the_gradient_is_perfectly_aligned_and_efficient(linear_d, central_x) -> None:
    scorer, x, x_next, p = _setup(linear_d, central_x, 0.05)
    m = measure_update(scorer, x, x_next, eps=8 / 255, efficiency_steps=5, noise_draws=1,
                       min_norm=MinNorm(norm="l2"))
    s = m.samples
    assert np.allclose(s["cos_grad"], 1.0, atol=1e-5)
    assert np.allclose(s["cos_z"], math.sqrt(x[0].numel()), rtol=1e-4)
    assert np.allclose(s["efficiency"][~np.isnan(s["efficiency"])], 1.0, atol=1e-3)
    assert np.allclose(s["l2"], 0.05, rtol=1e-5)
    expected_flip = (s["s"] < 0) & (s["s"] + 0.05 * linear_d.w.norm().item() >= 0)
    assert np.array_equal(s["flip"], expected_flip)
    assert np.array_equal(s["accidental"], s["flip"] & (s["linf"] <= 2 * 8 / 255 * (1 + 1e-6)))
    exact = np.abs(s["s"]) / linear_d.w.norm().item()
    fake = s["fake"]
    assert np.allclose(s["eps_star"][fake], exact[fake], rtol=0.05)
    assert np.allclose(s["ratio"][fake], 0.05 / s["eps_star"][fake], rtol=1e-5)


def test_summary_rates_are_over_fake_classified_samples(linear_d, central_x) -> None:
    scorer, x, x_next, _ = _setup(linear_d, central_x, 0.05)
    m = measure_update(scorer, x, x_next, eps=1.0, efficiency_steps=0)
    fake, flip = m.samples["fake"], m.samples["flip"]
    assert m.summary["flip_rate"]["n"] == fake.sum() == m.summary["n_fake"]
    assert m.summary["flip_rate"]["value"] == pytest.approx(flip.sum() / fake.sum())
    assert m.summary["aar"] == m.summary["flip_rate"]  # eps = whole range: every update is "small"


def test_a_large_update_is_not_accidental(linear_d, central_x) -> None:
    scorer, x, x_next, _ = _setup(linear_d, central_x, 0.5)
    m = measure_update(scorer, x, x_next, eps=1 / 255, efficiency_steps=0)
    assert m.samples["flip"].any() and not m.samples["accidental"].any()


def test_random_directions_have_near_zero_alignment(linear_d, central_x) -> None:
    scorer = Scorer(linear_d)
    g = torch.Generator().manual_seed(0)
    x_next = (central_x + 0.01 * torch.randn(central_x.shape, generator=g)).clamp(-1, 1)
    m = measure_update(scorer, central_x, x_next, eps=8 / 255, efficiency_steps=0)
    assert abs(float(np.median(m.samples["cos_z"]))) < 1.0


def test_mismatched_shapes_are_a_clear_error(linear_d, central_x) -> None:
    with pytest.raises(ValueError, match="same shape"):
        measure_update(Scorer(linear_d), central_x, central_x[:3], eps=0.1)
