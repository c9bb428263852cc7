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
from typing import Any, Literal

import torch

from ganrobust.attacks.base import Attack, _expand
from ganrobust.attacks.precision import Precision, resolve_precision
from ganrobust.attacks.result import Search
from ganrobust.config import PRECISION
from ganrobust.conventions import Direction, Norm, NormLike
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
    tau, lo, hi = scorer.tau, scorer.bounds.box_lo, scorer.bounds.box_hi
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
    subset = early_stop and not scorer.check_batch(x).whole_batch

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
                s = (scorer if idx is None else scorer.rows(idx)).forward(xa)
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


def confirm(scorer: Scorer, x_try: torch.Tensor, direction: Direction, candidates: torch.Tensor) -> torch.Tensor:
    """``candidates`` (B,) that the float32 reference of a reduced-precision search scorer
    confirms at ``x_try``; a float32 search's own verdict is kept as it is."""
    if scorer.autocast is None or not candidates.any():
        return candidates
    reference = scorer.reference or scorer
    with torch.no_grad():
        return candidates & direction.crossed(reference(x_try), reference.tau)


#: float32 steps that finish a reduced-precision PGD whose crossing float32 denied
POLISH_STEPS = 2


def pgd_confirmed(scorer: Scorer, x: torch.Tensor, eps: torch.Tensor, **options: Any
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`pgd` whose crossings hold for the float32 D.

    On a reduced-precision search scorer, each crossing the search reports is checked by its
    float32 :attr:`~ganrobust.Scorer.reference`; samples the search claimed but float32
    denies (margins below bf16's rounding, ~|s|/256) take up to ``POLISH_STEPS`` more steps
    in float32 from where the search stopped. On a float32 scorer this is :func:`pgd`.
    """
    x_adv, iterations, crossed = pgd(scorer, x, eps, **options)
    if scorer.autocast is None:
        return x_adv, iterations, crossed
    active = options.get("active")
    claimed = crossed if active is None else crossed & active
    held = confirm(scorer, x_adv, options["direction"], claimed)
    retry = claimed & ~held
    if retry.any():
        exact = scorer._replace(autocast=None)
        steps = min(POLISH_STEPS, options["steps"])
        x_32, used, ok = pgd(exact, x, eps, **{**options, "active": retry, "init": x_adv, "steps": steps,
                                               "random_start": False})
        ok = confirm(scorer, x_32, options["direction"], ok & retry)
        x_adv = torch.where(_expand(ok, x_adv), x_32, x_adv)
        iterations = iterations + used
        held = held | ok
    return x_adv, iterations, held


class ProjectedGradientDescentAttack(Attack):
    """PGD on the margin ±(s − tau) (Madry et al. 2018), linf or l2.

    Args:
        norm: ``linf`` or ``l2``.
        steps: gradient steps.
        rel_stepsize: step size as a multiple of eps (default ``2.5 / steps``, Madry's rule).
        random_start: start from a uniform point of the eps-ball (seeded by the call's seed).
        early_stop: stop each sample once its decision has flipped (success-rate work).
        schedule: ``constant`` or ``cosine`` step size.
        precision: precision of the search (``fp32``, ``bf16``, ``fp16`` or ``auto``: bf16
            where native); success is verified in float32 whatever it is.
        precision_check: samples re-attacked with a float32 search to flag a weaker
            reduced-precision search (diagnostic ``precision-weaker``); 0 disables.
    """

    def __init__(self, *, norm: NormLike = Norm.LINF, steps: int = 10, rel_stepsize: float | None = None,
                 random_start: bool = True, early_stop: bool = True, schedule: Schedule = "constant",
                 precision: Precision | str = PRECISION, precision_check: int = 0) -> None:
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
        self._set_precision(precision, precision_check)

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        assert eps is not None
        x_adv, iterations, _ = pgd(
            scorer, x, eps, norm=self.norm, direction=direction, steps=self.steps,
            rel_stepsize=self.rel_stepsize, random_start=self.random_start,
            early_stop=self.early_stop, generator=generator, active=~crossed, schedule=self.schedule)
        return x_adv, iterations, []

    def search(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, *, direction: Direction,
               generator: torch.Generator, active: torch.Tensor | None = None, seed: int = 0,
               on_copy: bool = True) -> Search:
        """:meth:`Attack.search` with PGD's own record of which samples crossed at some iterate
        (per-sample early stop counts those iterations)."""
        if eps is None:
            raise ValueError(f"{self!r} searches within a budget: pass eps (B,) in data units")
        work = scorer.frozen(precision=resolve_precision(self.precision, x.device, scorer=scorer, x=x)) \
            if on_copy else scorer
        x_adv, iterations, crossed = pgd(
            work, x, eps, norm=self.norm, direction=direction, steps=self.steps, rel_stepsize=self.rel_stepsize,
            random_start=self.random_start, early_stop=self.early_stop, generator=generator, active=active,
            schedule=self.schedule)
        return Search(x_adv, iterations, crossed)


class FastGradientAttack(ProjectedGradientDescentAttack):
    """One gradient-sign (linf: FGSM, Goodfellow et al. 2015) or gradient (l2: FGM) step of size eps.

    With ``random_start=True`` and ``rel_stepsize=1.25`` it is FGSM-RS, the "fast adversarial
    training" attack of Wong et al. (2020).
    """

    def __init__(self, *, norm: NormLike = Norm.LINF, random_start: bool = False,
                 rel_stepsize: float | None = None, precision: Precision | str = PRECISION,
                 precision_check: int = 0) -> None:
        rel = (1.25 if random_start else 1.0) if rel_stepsize is None else rel_stepsize
        super().__init__(norm=norm, steps=1, rel_stepsize=rel, random_start=random_start, early_stop=False,
                         precision=precision, precision_check=precision_check)
