"""Projected gradient descent on the decision margin, in linf and l2.

Each iteration ascends the margin ``m = ±(s − tau)`` (never a cross-entropy, so saturated
discriminators keep their gradient) and projects back onto the eps-ball and the data box:

    linf:  x ← clip_box(x0 + clip(x − x0 + α·sign(∇m), −ε, ε))
    l2:    x ← clip_box(x0 + Π_ε(x − x0 + α·∇m/‖∇m‖₂))

The budget ``ε`` is per sample, so minimum-norm bisection runs one batched PGD for many
budgets. With per-sample early stop a sample leaves the batch once its decision has
flipped; when BatchNorm scores with running statistics the remaining samples are computed
alone (the forward costs only what is left), in batch-statistics mode the batch stays whole.
The returned point is the best iterate by margin, so success is never lost to a late step.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from ganrobust.attacks.base import Attack, _expand
from ganrobust.conventions import BatchNormMode, Direction, Norm, NormLike
from ganrobust.diagnostics import Diagnostic
from ganrobust.scorer import Scorer

Schedule = Literal["constant", "cosine"]


def random_in_ball(x: torch.Tensor, eps: torch.Tensor, norm: Norm, generator: torch.Generator) -> torch.Tensor:
    """A uniform random point of the eps-ball around 0 (B, ...), per-sample radius ``eps`` (B,)."""
    e = _expand(eps, x)
    if norm is Norm.LINF:
        return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * e
    d = x[0].numel()
    u = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    u = u / u.reshape(x.shape[0], -1).norm(dim=1).clamp_min(1e-12).reshape(e.shape)
    r = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
    return u * e * _expand(r, x)


def project(delta: torch.Tensor, eps: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Project ``delta`` (B, ...) onto the ball of per-sample radius ``eps`` (B,)."""
    e = _expand(eps, delta)
    if norm is Norm.LINF:
        return torch.maximum(torch.minimum(delta, e), -e)
    n = delta.reshape(delta.shape[0], -1).norm(dim=1)
    factor = (eps / n.clamp_min(1e-30)).clamp(max=1.0)
    return delta * _expand(factor, delta)


def pgd(
    scorer: Scorer,
    x: torch.Tensor,
    eps: torch.Tensor,
    *,
    norm: Norm,
    direction: Direction,
    steps: int,
    rel_stepsize: float,
    random_start: bool,
    early_stop: bool,
    generator: torch.Generator,
    active: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    schedule: Schedule = "constant",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched PGD. ``eps`` (B,) in data units; ``active`` (B,) selects the samples to attack
    (others are returned as given); ``init`` warm-starts from given points.

    Returns ``(x_adv, iterations, crossed)``, each per sample.
    """
    tau, lo, hi = scorer.tau, scorer.bounds.lo, scorer.bounds.hi
    batch = x.shape[0]
    todo = torch.ones(batch, dtype=torch.bool, device=x.device) if active is None else active.clone()
    start = x if init is None else init.detach()
    delta = start - x
    if random_start:  # drawn for every sample (results do not depend on the mask), applied to active ones
        noise = random_in_ball(x, eps, norm, generator)
        delta = delta + (noise if active is None else noise * _expand(active, noise))
    adv = (x + project(delta, eps, norm)).clamp(lo, hi)
    best = adv.clone()
    best_margin = torch.full((batch,), -math.inf, device=x.device, dtype=x.dtype)
    crossed = torch.zeros(batch, dtype=torch.bool, device=x.device)
    iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
    alpha = rel_stepsize * eps
    subset = early_stop and scorer.bn is BatchNormMode.EVAL

    with scorer.session():
        for t in range(steps + 1):
            if subset:
                idx = todo.nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                xa = adv.index_select(0, idx)
            else:
                if not todo.any():
                    break
                idx, xa = None, adv
            last = t == steps
            with torch.enable_grad():
                xa = xa.detach().requires_grad_(not last)
                s = scorer.forward(xa)
                m = direction.margin(s, tau)
                grad = None if last else torch.autograd.grad(m.sum(), xa)[0]
            m, s, xa = m.detach(), s.detach(), xa.detach()
            live = todo if idx is None else todo.index_select(0, idx)
            prev = best_margin if idx is None else best_margin.index_select(0, idx)
            better = live & (m > prev)
            hit = live & direction.crossed(s, tau)
            if idx is None:
                best_margin = torch.where(better, m, best_margin)
                best = torch.where(_expand(better, best), xa, best)
                crossed |= hit
                if early_stop:
                    todo &= ~hit
            else:
                best_margin.index_copy_(0, idx, torch.where(better, m, prev))
                best.index_copy_(0, idx, torch.where(_expand(better, xa), xa, best.index_select(0, idx)))
                crossed.index_copy_(0, idx, crossed.index_select(0, idx) | hit)
                if early_stop:
                    todo.index_copy_(0, idx, live & ~hit)
            if last:
                break
            assert grad is not None
            x0 = x if idx is None else x.index_select(0, idx)
            e = eps if idx is None else eps.index_select(0, idx)
            a = alpha if idx is None else alpha.index_select(0, idx)
            if schedule == "cosine":
                a = a * 0.5 * (1 + math.cos(math.pi * t / steps)) * 2  # same total travel
            if norm is Norm.LINF:
                step = grad.sign()
            else:
                gn = grad.reshape(grad.shape[0], -1).norm(dim=1).clamp_min(1e-30)
                step = grad / _expand(gn, grad)
            moved = (x0 + project(xa - x0 + _expand(a, xa) * step, e, norm)).clamp(lo, hi)
            live = todo if idx is None else todo.index_select(0, idx)
            if idx is None:
                adv = torch.where(_expand(live, adv), moved, adv)
                iterations += live.long()
            else:
                adv.index_copy_(0, idx, torch.where(_expand(live, moved), moved, xa))
                iterations.index_add_(0, idx, live.long())
    return best, iterations, crossed


class ProjectedGradientDescentAttack(Attack):
    """PGD on the margin ±(s − tau) (Madry et al. 2018), linf or l2.

    Args:
        norm: ``linf`` or ``l2``.
        steps: gradient steps.
        rel_stepsize: step size as a multiple of eps (default ``2.5 / steps``, Madry's rule).
        random_start: start from a uniform point of the eps-ball (seeded by the call's seed).
        early_stop: stop each sample once its decision has flipped (success-rate work).
        schedule: ``constant`` or ``cosine`` step size.
    """

    def __init__(self, *, norm: NormLike = Norm.LINF, steps: int = 10, rel_stepsize: float | None = None,
                 random_start: bool = True, early_stop: bool = True, schedule: Schedule = "constant") -> None:
        super().__init__(norm=norm)
        if steps < 1:
            raise ValueError(f"expected steps >= 1, got {steps}")
        if rel_stepsize is not None and rel_stepsize <= 0:
            raise ValueError(f"expected rel_stepsize > 0, got {rel_stepsize}")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"expected schedule 'constant' or 'cosine', got {schedule!r}")
        self.steps = steps
        self.rel_stepsize = 2.5 / steps if rel_stepsize is None else rel_stepsize
        self.random_start = random_start
        self.early_stop = early_stop
        self.schedule: Schedule = schedule

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        assert eps is not None
        x_adv, iterations, _ = pgd(
            scorer, x, eps, norm=self.norm, direction=direction, steps=self.steps,
            rel_stepsize=self.rel_stepsize, random_start=self.random_start,
            early_stop=self.early_stop, generator=generator, active=~crossed, schedule=self.schedule)
        return x_adv, iterations, []


class FastGradientAttack(ProjectedGradientDescentAttack):
    """One gradient-sign (linf: FGSM, Goodfellow et al. 2015) or gradient (l2: FGM) step of size eps.

    With ``random_start=True`` and ``rel_stepsize=1.25`` it is FGSM-RS, the "fast adversarial
    training" attack of Wong et al. (2020).
    """

    def __init__(self, *, norm: NormLike = Norm.LINF, random_start: bool = False,
                 rel_stepsize: float | None = None) -> None:
        rel = (1.25 if random_start else 1.0) if rel_stepsize is None else rel_stepsize
        super().__init__(norm=norm, steps=1, rel_stepsize=rel, random_start=random_start, early_stop=False)
