"""Minimum-norm attack for one logit: iterated binary DeepFool, refined by bisection with PGD.

For a single decision function the DeepFool step has a closed form. Linearising the margin
``m(x + r) ≈ m + ∇m·r = 0`` gives the smallest step to the boundary:

    l2:    r = −m · ∇m / ‖∇m‖₂²        linf:  r = −m · sign(∇m) / ‖∇m‖₁

iterated from the accumulated perturbation and scaled by ``1 + overshoot`` (Moosavi-Dezfooli
et al. 2016). For a linear discriminator one step lands on the exact optimum
``|s − tau| / ‖w‖_dual``. DeepFool's answer is an upper bound; bisection on the budget with
PGD warm-started along DeepFool's direction then tightens it. The reported ``eps_star`` is
the norm of an adversarial example that the scorer verified, so it can never be below the
true minimum — only above it by the search's slack.
"""

from __future__ import annotations

import copy

import torch

from ganrobust.attacks.base import Attack, _expand
from ganrobust.attacks.precision import Precision
from ganrobust.config import PRECISION
from ganrobust.attacks.projected_gradient_descent import pgd_confirmed
from ganrobust.conventions import Direction, Norm, NormLike
from ganrobust.diagnostics import Diagnostic
from ganrobust.scorer import Scorer


def deepfool(
    scorer: Scorer, x: torch.Tensor, *, norm: Norm, direction: Direction, active: torch.Tensor,
    max_iter: int, overshoot: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Binary DeepFool on the margin. Returns ``(x_adv, found, iterations)`` per sample."""
    tau, lo, hi = scorer.tau, scorer.bounds.box_lo, scorer.bounds.box_hi
    batch = x.shape[0]
    r_total = torch.zeros_like(x)
    adv = x.clone()
    found = torch.zeros(batch, dtype=torch.bool, device=x.device)
    todo = active.clone()
    iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
    # with batch statistics a sample's score depends on the whole batch: never subset it
    whole = scorer.check_batch(x).whole_batch
    everyone = torch.arange(batch, device=x.device)
    with scorer.session():
        for it in range(max_iter + 1):
            if not todo.any():
                break
            idx = everyone if whole else todo.nonzero().squeeze(1)
            live = todo.index_select(0, idx)
            with torch.enable_grad():
                xa = adv.index_select(0, idx).requires_grad_(True)
                s = scorer.rows(idx).forward(xa)
                m = direction.margin(s, tau)
                (g,) = torch.autograd.grad(m.sum(), xa)
            m, s = m.detach(), s.detach()
            hit = live & direction.crossed(s, tau)
            found.index_fill_(0, idx[hit], True)
            flat = g.reshape(g.shape[0], -1)
            dual = flat.abs().sum(1) if norm is Norm.LINF else flat.pow(2).sum(1)
            stuck = (dual == 0) | ~torch.isfinite(dual)
            keep = live & ~hit & ~stuck
            todo.index_copy_(0, idx, keep)
            if it == max_iter or not keep.any():
                break
            # (B', ...) closed-form step to the linearised boundary
            coef = (-m).clamp_min(0) / dual.clamp_min(1e-30)
            r = _expand(coef, g) * (g.sign() if norm is Norm.LINF else g)
            sel = idx[keep]
            r_total.index_add_(0, sel, r[keep])
            moved = (x.index_select(0, sel) + (1 + overshoot) * r_total.index_select(0, sel)).clamp(lo, hi)
            adv.index_copy_(0, sel, moved)
            iterations.index_add_(0, sel, torch.ones_like(sel))
    return adv, found, iterations


def bisect(
    scorer: Scorer, x: torch.Tensor, best: torch.Tensor, upper: torch.Tensor, *, norm: Norm,
    direction: Direction, active: torch.Tensor, steps: int, pgd_steps: int, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shrink verified adversarials ``best`` (norms ``upper``) by bisection on the budget.

    Each round runs PGD at the midpoint budget, warm-started from the known adversarial
    scaled onto the smaller ball. Returns ``(best, upper, gradient evaluations)``.
    """
    lower = torch.zeros_like(upper)
    iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for _ in range(steps):
        if not active.any():
            break
        mid = torch.where(active, (lower + upper) / 2, upper).clamp_min(1e-12)
        shrink = _expand(mid / upper.clamp_min(1e-30), x)
        init = x + (best - x) * shrink
        x_try, used, ok = pgd_confirmed(
            scorer, x, mid, norm=norm, direction=direction, steps=pgd_steps,
            rel_stepsize=2.5 / pgd_steps, random_start=False, early_stop=True,
            generator=generator, active=active, init=init)
        iterations += used
        realized = norm.of(x_try - x)
        ok = ok & active & (realized <= upper)
        best = torch.where(_expand(ok, x), x_try, best)
        upper = torch.where(ok, realized, upper)
        lower = torch.where(active & ~ok, mid, lower)
    return best, upper, iterations


class MinimumNormAttack(Attack):
    """Smallest adversarial perturbation per sample: binary DeepFool + bisection with PGD.

    ``result.norms`` is ``eps_star`` (data units; ``inf`` where no adversarial was found,
    or beyond ``eps`` when a cap is given).

    Args:
        norm: ``linf`` or ``l2``.
        max_iter: DeepFool iterations.
        overshoot: DeepFool's overshoot factor.
        bisection_steps: rounds of budget bisection (each a PGD run on unresolved samples);
            0 returns DeepFool's answer.
        pgd_steps: PGD steps per bisection round.
        precision: precision of the search (``fp32``, ``bf16``, ``fp16`` or ``auto``). In
            reduced precision DeepFool's answer and every bisection endpoint are verified by
            the user's D in float32 before they bound eps_star.
        precision_check: samples re-attacked with a float32 search to flag a weaker
            reduced-precision search (diagnostic ``precision-weaker``); 0 disables.
    """

    minimum_norm = True

    def __init__(self, *, norm: NormLike = Norm.L2, max_iter: int = 50, overshoot: float = 0.02,
                 bisection_steps: int = 8, pgd_steps: int = 10, precision: Precision | str = PRECISION,
                 precision_check: int = 0) -> None:
        super().__init__(norm=norm)
        if max_iter < 1 or bisection_steps < 0 or pgd_steps < 1 or overshoot < 0:
            raise ValueError(
                f"expected max_iter >= 1, bisection_steps >= 0, pgd_steps >= 1, overshoot >= 0; got "
                f"{max_iter}, {bisection_steps}, {pgd_steps}, {overshoot}")
        self.max_iter = max_iter
        self.overshoot = overshoot
        self.bisection_steps = bisection_steps
        self.pgd_steps = pgd_steps
        self._set_precision(precision, precision_check)
        self._start: torch.Tensor | None = None

    def starting_from(self, start: torch.Tensor | None) -> "MinimumNormAttack":
        """This attack with known candidates ``start`` (B, ...), one per sample (a generator
        update ``x'``): where ``start[i]`` is adversarial, ``‖start[i] − x[i]‖`` bounds eps* from
        above and the search starts there (DeepFool's answer is kept where it is smaller)."""
        new = copy.copy(self)
        new._start = None if start is None else start.detach()
        return new

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        active = ~crossed
        # DeepFool runs in float32 whatever the precision: its few steps set the upper bound
        # that bisection only lowers, and in bf16 a margin below the rounding (~|s|/256) would
        # leave that bound loose by the rounding over the margin. The bisection's PGD rounds,
        # where the cost is, search in the attack's precision, each endpoint verified in float32.
        exact = scorer if scorer.autocast is None else scorer._replace(autocast=None)
        best, found, iterations = deepfool(
            exact, x, norm=self.norm, direction=direction, active=active,
            max_iter=self.max_iter, overshoot=self.overshoot)
        if self._start is not None:
            best, found = self._from_start(exact, x, best, found, active, direction)
        lost = active & ~found
        if lost.any():
            # DeepFool stalled (box constraints, flat regions): PGD over the whole range
            whole = self.norm.of(torch.full_like(x[:1], scorer.bounds.width)).expand(x.shape[0])
            x_far, used, ok = pgd_confirmed(
                scorer, x, whole.clone(), norm=self.norm, direction=direction, steps=4 * self.pgd_steps,
                rel_stepsize=2.5 / (4 * self.pgd_steps), random_start=False, early_stop=True,
                generator=generator, active=lost)
            iterations += used
            best = torch.where(_expand(ok & lost, x), x_far, best)
            found = found | (ok & lost)
        upper = self.norm.of(best - x)
        best, _, used = bisect(
            scorer, x, best, upper, norm=self.norm, direction=direction, active=active & found,
            steps=self.bisection_steps, pgd_steps=self.pgd_steps, generator=generator)
        return best, iterations + used, []

    def _from_start(self, scorer: Scorer, x: torch.Tensor, best: torch.Tensor, found: torch.Tensor,
                    active: torch.Tensor, direction: Direction) -> tuple[torch.Tensor, torch.Tensor]:
        """DeepFool's candidates, replaced by the known start points where those cross and are closer."""
        assert self._start is not None
        start = scorer.bounds.clamp(self._start.to(device=x.device, dtype=x.dtype))
        if start.shape != x.shape:
            raise ValueError(f"expected start points of shape {tuple(x.shape)}, got {tuple(start.shape)}")
        with torch.no_grad():
            known = active & direction.crossed(scorer(start), scorer.tau)
        closer = known & (~found | (self.norm.of(start - x) < self.norm.of(best - x)))
        return torch.where(_expand(closer, x), start, best), found | known
