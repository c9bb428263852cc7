"""Minimum norm never fails silently: an update that flips a sample is an adversarial of its own
size, so eps* <= ‖p‖∞ whatever the search finds; where eps* is still not found the measurement says
so (diagnostic ``eps-star-not-found`` with the count), never a bare inf median."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.measure.update import measure_update
from ganrobust.scorer import Scorer


class StepD(nn.Module):
    """Real iff the mean pixel exceeds 0.3: an exactly zero input gradient, so neither DeepFool
    nor PGD can move a sample (the trait of a D whose gradients vanish)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return (flat.mean(1) > 0.3).float() * 2 - 1 + 0 * flat.sum(1)


def _update(n: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 4, 4, generator=g) * 0.4 - 0.2          # mean ~0: fake
    moved = torch.arange(n) < 8                                  # the update flips the first 8
    x_next = torch.where(moved[:, None, None, None], (x + 0.6).clamp(-1, 1), x)
    return x, x_next, moved


def test_a_flipping_update_bounds_eps_star_by_its_own_size() -> None:
    x, x_next, moved = _update()
    m = measure_update(Scorer(StepD()), x, x_next, eps=8 / 255, efficiency_steps=0, noise_draws=0,
                       min_norm=MinimumNormAttack(norm="linf", bisection_steps=4))
    flip = m.samples["flip"]
    assert flip[: 8].all() and not flip[8:].any()
    eps_star, linf = m.samples["eps_star"], m.samples["linf"]
    assert np.isfinite(eps_star[flip]).all()
    assert (eps_star[flip] <= linf[flip] * (1 + 1e-6)).all()
    assert (m.samples["ratio"][flip] >= 1 - 1e-6).all()  # the update is at best as small as the minimum


def test_eps_star_not_found_is_a_diagnostic_with_the_count() -> None:
    x, x_next, _ = _update()
    m = measure_update(Scorer(StepD()), x, x_next, eps=8 / 255, efficiency_steps=0, noise_draws=0,
                       min_norm=MinimumNormAttack(norm="linf", bisection_steps=2))
    lost = [d for d in m.diagnostics if d.code == "eps-star-not-found"]
    assert len(lost) == 1 and "4 of 12" in lost[0].message, [str(d) for d in m.diagnostics]
    assert np.isinf(m.samples["eps_star"][8:]).all()
    # the 8 update-bounded values carry the median: finite
    assert np.isfinite(m.summary["eps_star"]["value"])
