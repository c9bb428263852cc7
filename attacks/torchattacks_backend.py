"""torchattacks (Kim 2020) behind ganrobust's attack protocol, for cross-checks and breadth.

torchattacks expects inputs in [0, 1], so the adapter maps ``u -> lo + u·(hi − lo)``; budgets
as fractions of the range are then exactly torchattacks' eps (linf and l2 alike). Its PGD,
FGSM and APGD-CE differentiate a cross-entropy and lose their gradient on saturated scores;
results say so. The torchattacks wheel also ships a broken top-level ``robustbench``:
ganrobust never imports it.
"""

from __future__ import annotations

from typing import Any

import torch

from ganrobust.attacks.base import Attack
from ganrobust.attacks.two_logit import BackendAttack, BackendSpec, TwoLogit, sandbox, scalar_budget
from ganrobust.conventions import Direction, Norm
from ganrobust.diagnostics import SATURATION_MARGIN, Diagnostic
from ganrobust.errors import InputError
from ganrobust.scorer import Scorer

CROSS_ENTROPY = "cross-entropy"


def _pgd(ta: Any, model: torch.nn.Module, eps: float, norm: Norm, kw: dict[str, Any]) -> Any:
    steps = kw.get("steps", 10)
    alpha = kw.get("rel_stepsize", 2.5 / steps) * eps
    cls = ta.PGD if norm is Norm.LINF else ta.PGDL2
    return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=kw.get("random_start", True))


SPECS: dict[str, BackendSpec] = {
    "PGD": BackendSpec((Norm.LINF, Norm.L2), CROSS_ENTROPY, False, _pgd),
    "FGSM": BackendSpec((Norm.LINF,), CROSS_ENTROPY, False, lambda ta, m, e, n, kw: ta.FGSM(m, eps=e)),
    "APGD": BackendSpec((Norm.LINF, Norm.L2), CROSS_ENTROPY, False, lambda ta, m, e, n, kw: ta.APGD(
        m, norm="Linf" if n is Norm.LINF else "L2", eps=e, steps=kw.get("steps", 10), loss="ce",
        seed=kw.get("seed", 0))),
    "DeepFool": BackendSpec((Norm.L2,), "logit-difference", True, lambda ta, m, e, n, kw: ta.DeepFool(
        m, steps=kw.get("steps", 50), overshoot=kw.get("overshoot", 0.02))),
    "FAB": BackendSpec((Norm.LINF, Norm.L2), "logit-difference", True, lambda ta, m, e, n, kw: ta.FAB(
        m, norm="Linf" if n is Norm.LINF else "L2", eps=e, steps=kw.get("steps", 10), n_classes=2,
        n_restarts=kw.get("n_restarts", 1), seed=kw.get("seed", 0))),
}


class TorchattacksAttack(BackendAttack):
    """A torchattacks attack by name: ``PGD`` (linf or l2), ``FGSM``, ``APGD`` (CE loss),
    ``DeepFool`` (l2) and ``FAB`` (minimum-norm). Keyword options: ``steps``,
    ``rel_stepsize``, ``random_start``, ``overshoot``, ``n_restarts``."""

    backend = "torchattacks"
    specs = SPECS

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        if not scorer.bounds.box:
            raise InputError(f"the torchattacks backend attacks inside the data box, and this scorer has none "
                             f"(D sees G's raw output, as StyleGAN's does); use backend='native'")
        import torchattacks as ta

        width = scorer.bounds.width
        if eps is None:  # unbounded minimum-norm search: the whole range
            e = 1.0 if self.norm is Norm.LINF else float(x[0].numel()) ** 0.5
        else:
            e = scalar_budget(eps, f"torchattacks {self.name}") / width
        with sandbox(scorer, seed) as frozen:
            image = x.dim() == 4
            model = TwoLogit(frozen, direction, unit_space=True,
                             sample_shape=None if image else tuple(x.shape[1:]))
            attack = self._spec.build(ta, model, e, self.norm, {**self.options, "seed": seed})
            u = ((x - scorer.bounds.lo) / width).clamp(0, 1)
            if not image:
                u = u.reshape(x.shape[0], -1, 1, 1)
            labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            u_adv = attack(u, labels).detach()
        x_adv = (scorer.bounds.lo + u_adv * width).reshape(x.shape)
        steps = int(self.options.get("steps", 1 if self.name == "FGSM" else 10))
        return x_adv, torch.full((x.shape[0],), steps, dtype=torch.long), _ce_masking(self, scorer, x, direction)


def _ce_masking(attack: Attack, scorer: Scorer, x: torch.Tensor, direction: Direction) -> list[Diagnostic]:
    """Flag a cross-entropy backend run on saturated scores."""
    if attack.loss != CROSS_ENTROPY:
        return []
    with torch.no_grad():
        gap = direction.margin(scorer(x), scorer.tau).abs().median().item()
    if gap <= SATURATION_MARGIN:
        return []
    return [Diagnostic.make(
        "cross-entropy-masking",
        f"{attack!r} differentiates a cross-entropy on scores with median |s - tau| = {gap:.3g}; "
        f"its gradient underflows, so a low success rate here is not robustness")]
