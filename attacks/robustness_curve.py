"""Robustness curves over an eps grid from one minimum-norm run, verified by PGD at the grid.

Per-eps PGD costs one attack per grid point. Here a single DeepFool run gives each sample an
adversarial example of norm ``eps_df`` (an upper bound on its minimum norm), which settles
every grid point ``e >= eps_df`` at once.

With ``bn='batch'`` a sample's score depends on the rest of the batch, so a per-sample
minimum norm is only approximately defined: the curve is verified on the final joint batch
and can sit a few points below per-eps PGD, which attacks the whole batch jointly. Only samples that DeepFool has not settled at ``e``
are attacked there, by a short PGD warm-started along DeepFool's direction scaled onto the
e-ball; a success lowers the sample's ``eps_star`` for every larger ``e`` too. Success at
``e`` is then ``eps_star <= e``: a verified adversarial exists for each counted sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ganrobust.attacks.base import SETTLE_STEPS, SETTLE_STEPS_REDUCED, _expand, settle
from ganrobust.attacks.minimum_norm import deepfool
from ganrobust.attacks.precision import Precision, resolve_precision
from ganrobust.config import PRECISION
from ganrobust.attacks.projected_gradient_descent import pgd_confirmed
from ganrobust.conventions import Bounds, Direction, DirectionLike, Norm, NormLike
from ganrobust.scorer import Scorer
from ganrobust.stats import Estimate, median_ci, clopper_pearson


@dataclass
class RobustnessCurve:
    """Attack success rate against budget for one norm and direction.

    ``eps`` are fractions of the data range; ``eps_star`` (B,) are data units (``inf``: no
    adversarial found within the largest grid budget).
    """

    norm: Norm
    direction: Direction
    bounds: Bounds
    eps: np.ndarray                 # (E,) fractions of the range, ascending
    success: list[Estimate]         # (E,) among samples not already crossed
    eps_star: torch.Tensor          # (B,) data units
    x_adv: torch.Tensor             # (B, ...) an adversarial of norm eps_star (x where none)
    clean_crossed: torch.Tensor     # (B,) already on the target side
    pgd_settled: np.ndarray         # (E,) samples that only PGD (not DeepFool) settled at each eps
    method: str
    precision: str = "fp32"         # what the search ran in (verification is always float32)

    @property
    def clean_accuracy(self) -> Estimate:
        """Share of samples the discriminator classifies as the attack's source class."""
        return clopper_pearson(int((~self.clean_crossed).sum()), int(self.clean_crossed.numel()))

    @property
    def median_eps_star(self) -> Estimate:
        """Median minimum norm among attacked samples, as a fraction of the range."""
        values = (self.eps_star[~self.clean_crossed] / self.bounds.width).cpu().numpy()
        return median_ci(values)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"norm": self.norm.value, "direction": self.direction.value, "eps": float(e),
             "eps_data": float(self.bounds.to_data(e)), "success_rate": est.value,
             "ci_low": est.ci_low, "ci_high": est.ci_high, "n": est.n}
            for e, est in zip(self.eps, self.success)
        ]


def robustness_curve(
    scorer: Scorer,
    x: torch.Tensor,
    eps: Sequence[float],
    *,
    norm: NormLike = Norm.LINF,
    direction: DirectionLike = Direction.FAKE_TO_REAL,
    max_iter: int = 50,
    overshoot: float = 0.02,
    verify_steps: int = 5,
    seed: int = 0,
    precision: Precision | str = PRECISION,
) -> RobustnessCurve:
    """Success rate at every budget of ``eps`` (fractions of the range) in one pass.

    ``precision`` is the search's (``fp32``, ``bf16``, ``fp16``, ``auto``: bf16 where native).
    DeepFool runs in float32; in reduced precision every PGD point that lowers a sample's
    ``eps_star`` is verified by the user's D in float32 as it is found."""
    norm, direction = Norm(norm), Direction(direction)
    grid = np.asarray(sorted(float(e) for e in eps), dtype=float)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or (grid <= 0).any():
        raise ValueError(f"expected a non-empty grid of eps > 0 (fractions of the data range), got {list(eps)}")
    if norm is Norm.LINF and (grid > 1).any():
        raise ValueError(f"expected linf eps <= 1 (the whole data range), got max {grid.max():g}")
    if verify_steps < 1:
        raise ValueError(f"expected verify_steps >= 1, got {verify_steps}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("expected a batch x of shape (B, ...)")
    x = x.detach()
    scorer.bounds.check(x)
    tau, width = scorer.tau, scorer.bounds.width
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    with torch.no_grad():
        s_clean = scorer(x)
    crossed = direction.crossed(s_clean, tau)
    user, x_user = scorer, x
    used = resolve_precision(precision, x.device, scorer=scorer, x=x)
    scorer, x = scorer.for_attack(x, precision=used)  # search on a frozen (channels-last) copy
    active = ~crossed
    tau = scorer.tau
    # DeepFool in float32 whatever the precision (as in MinimumNormAttack): its eps_df settles
    # every grid point above it and is the median eps* of most samples; in bf16 it would land
    # short of the float32 boundary and settle() would inflate it. The grid PGD searches in
    # ``precision``, each crossing confirmed in float32.
    exact = scorer if scorer.autocast is None else scorer._replace(autocast=None)
    x_df, found, _ = deepfool(exact, x, norm=norm, direction=direction, active=active,
                              max_iter=max_iter, overshoot=overshoot)
    eps_df = torch.where(found & active, norm.of(x_df - x), torch.full((x.shape[0],), math.inf, device=x.device))
    eps_star = eps_df.clone()
    x_best = torch.where(_expand(found & active, x), x_df, x)
    warm = x.clone()
    pgd_settled = np.zeros(grid.size, dtype=int)
    for i, e in enumerate(grid):
        e_data = e * width
        need = active & (eps_star > e_data * (1 + 1e-5))
        if not need.any():
            continue
        budget = torch.full((x.shape[0],), e_data, device=x.device, dtype=x.dtype)
        scale = (budget / eps_df).clamp(max=1.0)
        init = torch.where(_expand(found, x), x + (x_df - x) * _expand(torch.nan_to_num(scale), x), warm)
        x_try, _, ok = pgd_confirmed(scorer, x, budget, norm=norm, direction=direction, steps=verify_steps,
                           rel_stepsize=2.5 / verify_steps, random_start=False, early_stop=True,
                           generator=generator, active=need, init=init)
        ok = ok & need
        warm = torch.where(_expand(need, x), x_try, warm)
        realized = norm.of(x_try - x)
        better = ok & (realized < eps_star)
        eps_star = torch.where(better, realized, eps_star)
        x_best = torch.where(_expand(better, x), x_try, x_best)
        pgd_settled[i] = int(ok.sum())
    # verify with the user's scorer: a sample counts only if their D flips on it
    found_any = active & torch.isfinite(eps_star)
    x_best = settle(user, x_user, x_best.contiguous(), direction, found_any,
                    SETTLE_STEPS if used is Precision.FP32 else SETTLE_STEPS_REDUCED)
    with torch.no_grad():
        verified = direction.crossed(user(x_best), user.tau)
    eps_star = torch.where(found_any & verified, norm.of(x_best - x_user), eps_star)
    eps_star = torch.where(verified | ~torch.isfinite(eps_star), eps_star, torch.full_like(eps_star, math.inf))
    x_best = torch.where(_expand(verified, x_best), x_best, x_user)
    n = int(active.sum())
    success = [clopper_pearson(int((active & (eps_star <= e * width * (1 + 1e-5))).sum()), n) for e in grid]
    eps_star = torch.where(crossed, torch.zeros_like(eps_star), eps_star)
    return RobustnessCurve(
        norm=norm, direction=direction, bounds=scorer.bounds, eps=grid, success=success,
        eps_star=eps_star, x_adv=x_best, clean_crossed=crossed, pgd_settled=pgd_settled,
        method=f"deepfool(max_iter={max_iter}, overshoot={overshoot}) + pgd-verify(steps={verify_steps})"
               + ("" if used is Precision.FP32 else f", {used.value} search"),
        precision=used.value,
    )
