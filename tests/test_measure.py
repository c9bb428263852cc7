"""The per-update measurement on cases whose answer is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganrobust import Scorer
from ganrobust.attacks import MinNorm
from ganrobust.measure.update import measure_update


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


# -- batch statistics: one decision function inside every attack -------------------------------

def _recording(monkeypatch):
    """Record (input, scores) of every scorer forward, on the user's scorer and its copies."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = Scorer.forward

    def forward(self, x):
        s = original(self, x)
        calls.append((x.detach().contiguous().clone(), s.detach().clone()))
        return s

    monkeypatch.setattr(Scorer, "forward", forward)
    return calls


def test_under_batch_statistics_every_attack_scores_the_whole_batch(dcgan_d, images, monkeypatch) -> None:
    """bn='batch': a sample's score depends on its batch. Every forward inside the measurement
    (min-norm, efficiency PGD, null control) sees the whole scored batch, and wherever the batch
    is still unperturbed each sample scores exactly what classified it."""
    from ganrobust.attacks.minimum_norm import MinimumNormAttack

    x = images[:32]
    g = torch.Generator().manual_seed(0)
    x_next = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    scorer = Scorer(dcgan_d, bn="batch")
    calls = _recording(monkeypatch)
    m = measure_update(scorer, x, x_next, eps=8 / 255, efficiency_steps=2, noise_draws=1,
                       min_norm=MinimumNormAttack(norm="linf", bisection_steps=2), min_norm_probes=8)
    s = torch.from_numpy(m.samples["s"])
    assert not m.samples["fake"].all() and m.samples["fake"].any()  # both classes: the mask matters
    assert {c[0].shape[0] for c in calls} == {32}
    clean = [scores for inputs, scores in calls if torch.equal(inputs, x)]
    assert len(clean) >= 3  # the gradient pass, DeepFool's first iterate, PGD's first iterate
    for scores in clean:
        assert torch.allclose(scores, s, atol=1e-4)
    assert np.isfinite(m.samples["eps_star"][:8][m.samples["fake"][:8]]).all()
    assert np.isnan(m.samples["eps_star"][8:]).all()  # only the first k probes are attacked


def test_an_attack_mask_keeps_the_batch_and_moves_only_active_samples(dcgan_d, images) -> None:
    from ganrobust.attacks import PGD

    x = images[:16]
    scorer = Scorer(dcgan_d, bn="batch")
    active = torch.arange(16) < 5
    result = PGD(norm="linf", steps=3)(scorer, x, eps=16 / 255, active=active)
    moved = (result.x_adv != x).flatten(1).any(1)
    assert not moved[5:].any()
    assert not result.success[5:][~result.clean_crossed[5:]].any()
    assert result.success_rate.n == int((active & ~result.clean_crossed).sum())
    with pytest.raises(ValueError, match="bool mask of shape"):
        PGD(norm="linf")(scorer, x, eps=8 / 255, active=torch.ones(3, dtype=torch.bool))


# -- the null control ---------------------------------------------------------------------------

def test_the_null_step_has_the_update_norm_exactly_even_at_the_box_edge() -> None:
    from ganrobust.measure.update import random_step_in_box

    g = torch.Generator().manual_seed(0)
    # generator samples near a tanh's bounds: half the pixels sit at +-1
    x = torch.where(torch.rand(64, 3, 8, 8, generator=g) < 0.5, torch.sign(torch.randn(64, 3, 8, 8, generator=g)),
                    torch.rand(64, 3, 8, 8, generator=g) * 2 - 1)
    radius = torch.rand(64, generator=g) * 3 + 0.1
    d = random_step_in_box(x, radius, -1.0, 1.0, torch.Generator().manual_seed(1))
    assert ((x + d) >= -1).all() and ((x + d) <= 1).all()
    assert torch.allclose(d.flatten(1).norm(dim=1), radius, rtol=1e-4)


def test_the_null_control_is_a_per_draw_rate(linear_d, central_x) -> None:
    """Linear D: a random step d of norm r flips a fake sample iff w·d >= tau - s. The control
    must estimate that per-draw probability; counting a flip by any of 8 draws would estimate
    1 - (1 - p)^8 instead."""
    scorer = Scorer(linear_d)
    x = central_x.repeat(4, 1, 1, 1)  # 192 samples
    with torch.no_grad():
        s = linear_d(x)
    w = linear_d.w
    r = 0.08  # small: no pixel reaches the box, the step is exactly r·u
    x_next = x + r * (w / w.norm()).reshape(x.shape[1:])
    m = measure_update(scorer, x, x_next, eps=1.0, efficiency_steps=0, noise_draws=8, seed=3)
    # an independent oracle: the probability over uniform directions u of w·u·r >= -s
    u = torch.randn(20000, w.numel(), generator=torch.Generator().manual_seed(9))
    wu = (u @ w) / u.norm(dim=1)
    fake = s < 0
    p = torch.stack([(wu * r >= -si).double().mean() for si in s[fake]])
    control = m.summary["noise_flip_rate"]
    assert 0.05 < p.mean() < 0.6  # a regime where "any of 8 draws" is far from the per-draw rate
    assert control["ci_low"] <= p.mean().item() <= control["ci_high"]
    any_of_8 = (1 - (1 - p) ** 8).mean().item()
    assert not control["ci_low"] <= any_of_8 <= control["ci_high"]


def test_efficiency_on_a_nonlinear_d() -> None:
    """A short step along the input gradient gains what the best L2 attack of that size gains
    (efficiency ~1); the same step downhill loses it (efficiency ~ -1)."""
    torch.manual_seed(0)
    d = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
                            torch.nn.Linear(32, 1), torch.nn.Flatten(0))
    scorer = Scorer(d, bounds=(-4, 4))
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    _, _, grad = scorer.margin_grad(x, "fake->real")
    step = 0.01 * grad / grad.norm(dim=1, keepdim=True)
    up = measure_update(scorer, x, x + step, eps=1.0, efficiency_steps=5)
    down = measure_update(scorer, x, x - step, eps=1.0, efficiency_steps=5)
    e_up, e_down = up.samples["efficiency"], down.samples["efficiency"]
    assert np.isfinite(e_up).all() and np.isfinite(e_down).all()
    assert np.allclose(e_up, 1.0, atol=0.02)
    assert np.allclose(e_down, -1.0, atol=0.05)
