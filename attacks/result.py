"""What an attack returns: :class:`AttackResult` (a verified call of the template) and
:class:`Search` (the bare search that measurement runs inside a scored batch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ganrobust.conventions import Bounds, Direction, Norm
from ganrobust.diagnostics import Diagnostic
from ganrobust.stats import Estimate, clopper_pearson


@dataclass
class AttackResult:
    """What one attack call found, per sample (B = batch size).

    ``success`` is re-checked by ganrobust's own scorer on the returned inputs, whatever the
    backend claimed; failed samples are returned unperturbed (``x_adv == x``), except under batch
    statistics (``Scorer.whole_batch``), where the returned batch is the one verified, failed
    samples where the search left them (their norms are still 0, or inf). Samples
    already on the target side before the attack (``clean_crossed``) are not attacked and
    are excluded from :attr:`success_rate`; so are samples outside the call's ``active`` mask
    (they stay in the batch, unperturbed, so that batch statistics are those of the whole
    scored batch; their ``success`` is False and their ``norms`` NaN).
    """

    x_adv: torch.Tensor            # (B, ...) perturbed inputs, inside the bounds
    success: torch.Tensor          # (B,) bool: the decision is on the target side at x_adv
    clean_crossed: torch.Tensor    # (B,) bool: already on the target side before the attack
    scores_clean: torch.Tensor     # (B,) s at x
    scores_adv: torch.Tensor       # (B,) s at x_adv
    norms: torch.Tensor            # (B,) ||x_adv - x|| in data units (inf: no adversarial found
                                   #      by a minimum-norm attack)
    iterations: torch.Tensor       # (B,) gradient evaluations spent on each sample
    eps: torch.Tensor | None       # (B,) budget in data units; None for unbounded min-norm
    norm: Norm
    direction: Direction
    bounds: Bounds
    attack: str                    # repr of the exact configuration
    backend: str = "native"
    loss: str = "margin"           # what the backend differentiated
    diagnostics: list[Diagnostic] = field(default_factory=list)
    active: torch.Tensor | None = None  # (B,) bool: the samples the call asked to attack (None: all)
    precision: str = "fp32"        # what the search ran in (verification is always float32)

    @property
    def attacked(self) -> torch.Tensor:
        """Samples that were attacked: asked for (``active``) and not already crossed."""
        mask = ~self.clean_crossed
        return mask if self.active is None else mask & self.active

    @property
    def success_rate(self) -> Estimate:
        """Share of attacked samples (not already crossed) that the attack flipped."""
        mask = self.attacked
        return clopper_pearson(int((self.success & mask).sum()), int(mask.sum()))

    @property
    def norms_fraction(self) -> torch.Tensor:
        return self.norms / self.bounds.width

    @property
    def eps_fraction(self) -> torch.Tensor | None:
        return None if self.eps is None else self.eps / self.bounds.width

    def summary(self) -> dict[str, Any]:
        finite = self.norms[self.attacked & self.success]
        return {
            "attack": self.attack, "backend": self.backend, "loss": self.loss,
            "norm": self.norm.value, "direction": self.direction.value,
            "success_rate": self.success_rate.to_dict(),
            "median_norm": float(finite.median()) if finite.numel() else math.inf,
            "precision": self.precision,
            "diagnostics": [d.code for d in self.diagnostics],
        }


@dataclass
class Search:
    """An attack's bare search (:meth:`ganrobust.attacks.base.Attack.search`), per sample: where it
    left each input, the iterations it spent, and where the search's own scorer saw the decision
    cross (no verification by another scorer: measurement scores ``x_adv`` itself)."""

    x_adv: torch.Tensor       # (B, ...)
    iterations: torch.Tensor  # (B,) long
    crossed: torch.Tensor     # (B,) bool
