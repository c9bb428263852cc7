"""Robust discriminators: a drop-in D loss for any training loop.

    d_loss = RobustDLoss(method="pgd", eps=8/255)          # once
    loss = d_loss(D, real, fake)                            # where the standard loss was
    loss.backward(); opt_d.step()

Methods, on the same axis for comparison:

* ``pgd``: D's loss on PGD-perturbed inputs (Madry et al. 2018) — real samples pushed toward
  "fake", generated samples toward "real", or both (``perturb``), a share ``mix`` of each batch.
* ``fgsm-rs``: one FGSM step from a random start ("fast adversarial training", Wong et al. 2020).
* ``r1``: the standard loss plus ``gamma/2 · E‖∇ₓD(real)‖²`` (Mescheder et al. 2018).
* ``gp``: the standard loss plus ``gamma · E(‖∇ₓD(x̂)‖₂ − 1)²`` on interpolates (WGAN-GP).
* ``standard``: the loss alone.

What happens to D's state: perturbations are crafted with ganrobust's margin attacks with
BatchNorm in *batch-statistics* mode and its running statistics untouched, dropout off, and
no parameter gradient formed; then D's loss is computed on the perturbed batch exactly as
the standard loss would be (in D's own mode), so the running statistics move once per step,
as without the defence. Random starts draw from the loss object's own generator (seeded,
advanced per call): the global RNG is never touched, so a loop's other draws are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.config import D_TRAINING_METHODS, EPS, PRECISION
from ganrobust.attacks.precision import Precision, resolve_precision
from ganrobust.attacks.base import Attack
from ganrobust.attacks.projected_gradient_descent import FastGradientAttack, ProjectedGradientDescentAttack
from ganrobust.conventions import BatchNormMode, Bounds, Direction, Norm
from ganrobust.errors import InputError

METHODS = D_TRAINING_METHODS
PERTURB = ("both", "real", "fake")


def d_loss(loss: str, s_real: torch.Tensor, s_fake: torch.Tensor) -> torch.Tensor:
    """ns: softplus(−s_real) + softplus(s_fake); hinge; wgan: s_fake − s_real (means)."""
    if loss == "ns":
        return F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
    if loss == "hinge":
        return F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean()
    if loss == "wgan":
        return s_fake.mean() - s_real.mean()
    raise InputError(f"expected loss 'ns', 'hinge' or 'wgan', got {loss!r}")


@dataclass
class RobustDLoss:
    """D's loss with adversarial training or a gradient regulariser (see the module doc).

    ``eps`` is a fraction of the data range ``bounds``; ``steps`` and ``rel_stepsize`` set PGD.
    ``attack``: the attack that crafts the perturbed inputs of ``pgd``/``fgsm-rs`` (any
    :class:`~ganrobust.attacks.base.Attack`; default: :meth:`default_attack`), searched on D itself.
    """

    method: str = "pgd"
    eps: float = EPS
    norm: Norm | str = Norm.LINF
    steps: int = 5
    rel_stepsize: float | None = None
    perturb: str = "both"
    mix: float = 1.0
    gamma: float = 10.0
    loss: str = "ns"
    bounds: tuple[float, float] = (-1.0, 1.0)
    seed: int = 0
    precision: str = PRECISION
    #: how D is called on (x, c) for conditional GANs (a ganrobust.gan_call.GanCall); None: D(x, c)
    call: Any = None
    attack: Attack | None = None

    def __post_init__(self) -> None:
        self.precision = Precision.coerce(self.precision).value
        if self.method not in METHODS:
            raise InputError(f"expected method among {METHODS}, got {self.method!r}")
        if self.perturb not in PERTURB:
            raise InputError(f"expected perturb among {PERTURB}, got {self.perturb!r}")
        if not 0 < self.eps <= 1:
            raise InputError(f"expected 0 < eps <= 1 (fraction of the data range), got {self.eps}")
        if not 0 <= self.mix <= 1:
            raise InputError(f"expected 0 <= mix <= 1, got {self.mix}")
        if self.steps < 1 or self.gamma < 0:
            raise InputError(f"expected steps >= 1 and gamma >= 0, got {self.steps}, {self.gamma}")
        self.norm = Norm(self.norm)
        self._bounds = Bounds.coerce(self.bounds)
        self._calls = 0

    def default_attack(self) -> Attack:
        """``fgsm-rs``: FGSM from a random start (step 1.25 eps); ``pgd``: ``steps`` steps of
        ``rel_stepsize`` (default 2.5 / steps) from a random start; no early stop."""
        if self.method == "fgsm-rs":
            return FastGradientAttack(norm=self.norm, random_start=True)
        return ProjectedGradientDescentAttack(norm=self.norm, steps=self.steps,
                                              rel_stepsize=self.rel_stepsize or 2.5 / self.steps,
                                              random_start=True, early_stop=False)

    def _d(self, D: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.call is not None:
            return self.call.score_input(D, x, c)
        return D(x) if c is None else D(x, c)

    def perturbed(self, D: nn.Module, x: torch.Tensor, direction: Direction,
                  c: torch.Tensor | None = None) -> torch.Tensor:
        """The attacked copy of ``x`` (detached), within the budget and the data bounds."""
        from ganrobust.scorer import Scorer

        self._calls += 1
        n = int(round(self.mix * x.shape[0]))
        if n == 0:
            return x.detach()
        scorer = Scorer(D, bounds=self._bounds, bn=BatchNormMode.BATCH).conditioned(c, self.call)
        scorer.autocast = resolve_precision(self.precision, x.device, scorer=scorer, x=x).dtype  # the search only
        gen = torch.Generator(device=x.device).manual_seed(self.seed * 1_000_003 + self._calls)
        eps = torch.full((x.shape[0],), self._bounds.to_data(self.eps), device=x.device, dtype=x.dtype)
        active = torch.arange(x.shape[0], device=x.device) < n
        attack = self.attack if self.attack is not None else self.default_attack()
        found = attack.search(scorer, x.detach().clamp(self._bounds.lo, self._bounds.hi), eps, direction=direction,
                              generator=gen, active=active, on_copy=False)  # D is the one being trained
        return found.x_adv.detach()

    def __call__(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, c_real: torch.Tensor | None = None,
                 c_fake: torch.Tensor | None = None) -> torch.Tensor:
        """D's loss on ``real`` and ``fake``; a conditional D is called on (real, c_real) and
        (fake, c_fake) (gradient-penalty interpolates take ``c_real``)."""
        fake = fake.detach()  # gradients reach D only
        if self.method in ("pgd", "fgsm-rs"):
            if self.perturb in ("both", "real"):
                real = self.perturbed(D, real, Direction.REAL_TO_FAKE, c_real)
            if self.perturb in ("both", "fake"):
                fake = self.perturbed(D, fake, Direction.FAKE_TO_REAL, c_fake)
            return d_loss(self.loss, self._d(D, real, c_real), self._d(D, fake, c_fake))
        if self.method == "r1":
            real = real.detach().requires_grad_(True)
            s_real = self._d(D, real, c_real)
            (g,) = torch.autograd.grad(s_real.sum(), real, create_graph=True)
            penalty = g.pow(2).reshape(g.shape[0], -1).sum(1).mean()
            return d_loss(self.loss, s_real, self._d(D, fake, c_fake)) + self.gamma / 2 * penalty
        if self.method == "gp":
            alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
            self._calls += 1
            gen = torch.Generator(device=real.device).manual_seed(self.seed * 1_000_003 + self._calls)
            alpha = torch.rand(alpha_shape, generator=gen, device=real.device, dtype=real.dtype)
            mid = (alpha * real.detach() + (1 - alpha) * fake).requires_grad_(True)
            (g,) = torch.autograd.grad(self._d(D, mid, c_real).sum(), mid, create_graph=True)
            penalty = (g.reshape(g.shape[0], -1).norm(dim=1) - 1).pow(2).mean()
            return d_loss(self.loss, self._d(D, real, c_real), self._d(D, fake, c_fake)) + self.gamma * penalty
        return d_loss(self.loss, self._d(D, real, c_real), self._d(D, fake, c_fake))
