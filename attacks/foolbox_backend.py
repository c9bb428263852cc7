"""foolbox 3 (Rauber et al.) behind ganrobust's attack protocol; brings FMN and DDN.

foolbox takes the data bounds directly, so inputs and budgets stay in data units. Its
``import`` needs ``GIT_PYTHON_REFRESH=quiet`` on machines without git (set here), and it raises
a bare AssertionError on out-of-bounds inputs, which ganrobust's own bounds check prevents.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ganrobust.attacks.torchattacks_backend import CROSS_ENTROPY, _ce_masking
from ganrobust.attacks.two_logit import BackendAttack, BackendSpec, TwoLogit, sandbox, scalar_budget
from ganrobust.conventions import Direction, Norm
from ganrobust.diagnostics import Diagnostic
from ganrobust.errors import InputError
from ganrobust.scorer import Scorer


def _pgd(fa: Any, norm: Norm, kw: dict[str, Any]) -> Any:
    steps = kw.get("steps", 10)
    cls = fa.LinfPGD if norm is Norm.LINF else fa.L2PGD
    return cls(rel_stepsize=kw.get("rel_stepsize", 2.5 / steps), steps=steps,
               random_start=kw.get("random_start", True))


SPECS: dict[str, BackendSpec] = {
    "PGD": BackendSpec((Norm.LINF, Norm.L2), CROSS_ENTROPY, False, _pgd),
    "FGSM": BackendSpec((Norm.LINF,), CROSS_ENTROPY, False, lambda fa, n, kw: fa.FGSM()),
    "FMN": BackendSpec((Norm.LINF, Norm.L2), "logit-difference", True, lambda fa, n, kw: (
        fa.LInfFMNAttack if n is Norm.LINF else fa.L2FMNAttack)(steps=kw.get("steps", 100))),
    "DDN": BackendSpec((Norm.L2,), CROSS_ENTROPY, True, lambda fa, n, kw: fa.DDNAttack(steps=kw.get("steps", 100))),
    "DeepFool": BackendSpec((Norm.LINF, Norm.L2), "logit-difference", True, lambda fa, n, kw: (
        fa.LinfDeepFoolAttack if n is Norm.LINF else fa.L2DeepFoolAttack)(
        steps=kw.get("steps", 50), overshoot=kw.get("overshoot", 0.02), loss="logits")),
}


def import_foolbox() -> Any:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox

    return foolbox


class FoolboxAttack(BackendAttack):
    """A foolbox attack by name: ``PGD`` (linf or l2), ``FGSM``, and the minimum-norm
    ``FMN`` (linf or l2), ``DDN`` (l2) and ``DeepFool``. Keyword options: ``steps``,
    ``rel_stepsize``, ``random_start``, ``overshoot``."""

    backend = "foolbox"
    specs = SPECS

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        if not scorer.bounds.box:
            raise InputError(f"the foolbox backend attacks inside the data box, and this scorer has none "
                             f"(D sees G's raw output, as StyleGAN's does); use backend='native'")
        fb = import_foolbox()
        epsilon = None if eps is None else scalar_budget(eps, f"foolbox {self.name}")
        if self.minimum_norm:
            epsilon = None  # search unbounded; the cap is applied to the verified result
        with sandbox(scorer, seed) as frozen:
            model = TwoLogit(frozen, direction, unit_space=False)
            fmodel = fb.PyTorchModel(model, bounds=(scorer.bounds.lo, scorer.bounds.hi), device=x.device)
            attack = self._spec.build(fb.attacks, self.norm, self.options)
            labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            _, clipped, _ = attack(fmodel, x, labels, epsilons=epsilon)
        steps = int(self.options.get("steps", 1 if self.name == "FGSM" else 10))
        return clipped.detach(), torch.full((x.shape[0],), steps, dtype=torch.long), _ce_masking(self, scorer, x, direction)
