"""The null control: a random direction at the full budget.

linf: ``x + eps·sign(u)``, u Gaussian (a random vertex of the cube); l2: ``x + eps·u/‖u‖₂``.
A gradient attack that flips fewer samples than this is a sign of gradient masking.
"""

from __future__ import annotations

import torch

from ganrobust.attacks.base import Attack, _expand
from ganrobust.conventions import Direction, Norm, NormLike
from ganrobust.diagnostics import Diagnostic
from ganrobust.scorer import Scorer


def random_direction(x: torch.Tensor, norm: Norm, generator: torch.Generator) -> torch.Tensor:
    """Random perturbations (B, ...) of unit norm: sign vectors for linf, unit vectors for l2."""
    u = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if norm is Norm.LINF:
        return u.sign()
    return u / _expand(u.reshape(u.shape[0], -1).norm(dim=1).clamp_min(1e-30), u)


class RandomNoiseAttack(Attack):
    """Perturb by a random direction of norm eps, best of ``draws`` draws by margin."""

    def __init__(self, *, norm: NormLike = Norm.LINF, draws: int = 1) -> None:
        super().__init__(norm=norm)
        if draws < 1:
            raise ValueError(f"expected draws >= 1, got {draws}")
        self.draws = draws

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        assert eps is not None
        best, best_m = x, torch.full((x.shape[0],), -float("inf"), device=x.device, dtype=x.dtype)
        with torch.no_grad(), scorer.session():
            for _ in range(self.draws):
                cand = scorer.bounds.clamp(x + _expand(eps, x) * random_direction(x, self.norm, generator))
                m = direction.margin(scorer.forward(cand), scorer.tau)
                better = m > best_m
                best = torch.where(_expand(better, x), cand, best)
                best_m = torch.where(better, m, best_m)
        return best, torch.zeros(x.shape[0], dtype=torch.long, device=x.device), []
