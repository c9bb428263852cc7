"""The measurement of one generator update against the discriminator it was taken against.

Inputs: a scorer over D_t, probe samples ``x = G_θ(Z)`` and ``x' = G_θ'(Z)``; ``p = x' − x``.
Per sample (DESIGN.md, "The measurement of one generator update"):

    s, s_next     D_t(x), D_t(x')
    fake          s < tau: the samples an update can flip (the denominator of every rate)
    flip          s < tau <= s_next
    linf, l2      norms of p in data units
    small         linf <= eps (and l2 <= eps_l2 when set)          — Odena's "small"
    accidental    flip and small                                   — the headline (AAR)
    cos_grad      cos(p, ∇ₓ D_t(x));  cos_z = cos·sqrt(dim) is ~N(0, 1) for random directions
    s_pgd         best D_t score by L2 PGD within ‖p‖₂ of x
    efficiency    (s_next − s) / (s_pgd − s): 1 = the update is as good as the best attack
    noise_flip    share of draws with fake and D_t(x + d) >= tau, d a random direction with
                  ‖d‖₂ = ‖p‖₂ exactly and x + d inside the data box: the null control
    eps_star      minimum adversarial norm of D_t at x (``min_norm_norm``), on a subset
    ratio         norm(p) / eps_star: ~1 means the update is as efficient as the best attack
    persists      D_{t+1}(x') >= tau (filled in when D's next step is seen)

Each summary (rates over fake-classified samples with Clopper–Pearson intervals, medians with
distribution-free intervals) is defined once, in the metric registry :mod:`ganrobust.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganrobust.attacks.base import Attack, _expand
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.projected_gradient_descent import ProjectedGradientDescentAttack
from ganrobust.attacks.random_noise import random_direction
from ganrobust.conventions import Direction, Norm
from ganrobust.diagnostics import Diagnostic
from ganrobust.scorer import Scorer
from ganrobust.metrics import summarize
from ganrobust.stats import Estimate, clopper_pearson

F2R = Direction.FAKE_TO_REAL


@dataclass
class Measurement:
    """Per-sample arrays (numpy, length N) and their summary."""

    samples: dict[str, np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # from the minimum-norm attack

    @property
    def n(self) -> int:
        return len(self.samples["s"])


def efficiency_pgd(steps: int, precision: str = "fp32") -> ProjectedGradientDescentAttack:
    """The attack ``s_pgd`` comes from: L2 PGD within each sample's own ``‖p‖₂``, ``steps`` steps of
    ``2.5 / steps`` of the budget from x itself (no random start), every step taken (no early stop)."""
    return ProjectedGradientDescentAttack(norm=Norm.L2, steps=steps, rel_stepsize=2.5 / steps, random_start=False,
                                          early_stop=False, precision=precision)


def measure_update(
    scorer: Scorer,
    x: torch.Tensor,
    x_next: torch.Tensor,
    *,
    eps: float,
    eps_l2: float | None = None,
    efficiency_steps: int = 5,
    noise_draws: int = 1,
    min_norm: MinimumNormAttack | None = None,
    min_norm_probes: int | None = None,
    seed: int = 0,
    precision: str = "fp32",
    index: torch.Tensor | None = None,
    n_total: int | None = None,
) -> Measurement:
    """:func:`measure` with the efficiency attack given by its step count: :func:`efficiency_pgd`
    of ``efficiency_steps`` steps searching in ``precision`` (``fp32``, ``bf16``, ``fp16``,
    ``auto``; 0 steps: no efficiency), as the watch hook configures it."""
    efficiency = efficiency_pgd(efficiency_steps, precision) if efficiency_steps > 0 else None
    return measure(scorer, x, x_next, eps=eps, eps_l2=eps_l2, efficiency=efficiency, noise_draws=noise_draws,
                   min_norm=min_norm, min_norm_probes=min_norm_probes, seed=seed, index=index, n_total=n_total)


def measure(
    scorer: Scorer,
    x: torch.Tensor,
    x_next: torch.Tensor,
    *,
    eps: float,
    eps_l2: float | None = None,
    efficiency: Attack | None = None,
    noise_draws: int = 1,
    min_norm: MinimumNormAttack | None = None,
    min_norm_probes: int | None = None,
    seed: int = 0,
    index: torch.Tensor | None = None,
    n_total: int | None = None,
) -> Measurement:
    """Measure the update ``x -> x_next`` against ``scorer`` (D_t). Budgets are fractions of the range.

    ``efficiency`` is the attack whose search within each sample's ``‖p‖₂`` gives ``s_pgd``
    (any :class:`~ganrobust.attacks.base.Attack`, searched inside the whole batch in its own
    precision; None: no efficiency); ``s_pgd`` is scored by ``scorer`` in float32 like every other
    field. ``min_norm`` gives ``eps_star`` (None: not measured) and carries its own precision.

    ``index`` (N,) and ``n_total``: these samples are rows ``index`` of a probe batch of
    ``n_total`` that is measured in shards (one per rank under DDP). Every random draw is then
    made for the whole batch and indexed, and the minimum-norm subset is the batch's first
    ``min_norm_probes`` rows, so a row's numbers do not depend on which shard measured it."""
    if x.shape != x_next.shape:
        raise ValueError(f"expected x and x_next of the same shape, got {tuple(x.shape)} and {tuple(x_next.shape)}")
    x, x_next = x.detach(), x_next.detach()
    bounds, tau = scorer.bounds, scorer.tau
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    n, dim = x.shape[0], x[0].numel()

    s, _, grad = scorer.margin_grad(x, F2R)  # (N,), (N, ...)
    with torch.no_grad():
        s_next = scorer(x_next)
    p = x_next - x
    linf, l2 = Norm.LINF.of(p), Norm.L2.of(p)
    fake = s < tau
    flip = fake & (s_next >= tau)
    small = linf <= bounds.to_data(eps) * (1 + 1e-6)
    if eps_l2 is not None:
        small = small & (l2 <= bounds.to_data(eps_l2) * (1 + 1e-6))
    accidental = flip & small

    g_norm = grad.reshape(n, -1).norm(dim=1)
    cos = (p * grad).reshape(n, -1).sum(1) / (l2 * g_norm).clamp_min(1e-30)
    cos = torch.where((l2 > 0) & (g_norm > 0), cos, torch.full_like(cos, math.nan))

    moved = l2 > 0
    if efficiency is not None and moved.any():
        x_pgd = efficiency.search(scorer, x, l2.clamp_min(1e-12), direction=F2R, generator=generator, active=moved,
                                  seed=seed).x_adv
        with torch.no_grad():
            s_pgd = scorer(x_pgd)
        gain = s_pgd - s
        efficiency = torch.where(moved & (gain > 0), (s_next - s) / gain.clamp_min(1e-30),
                                 torch.full_like(s, math.nan))
    else:
        s_pgd = torch.full_like(s, math.nan)
        efficiency = torch.full_like(s, math.nan)

    # (N,) share of the draws that flipped a fake-classified sample: a per-draw rate, so more
    # draws sharpen the null control instead of inflating it (an "any draw" rate would)
    noise_flip = torch.zeros_like(s)
    with torch.no_grad(), scorer.session():
        for _ in range(noise_draws):
            u = None
            if index is not None:  # drawn for the whole batch, keyed by the probe's row in it
                whole = torch.empty((int(n_total or n),) + tuple(x.shape[1:]), device=x.device, dtype=x.dtype)
                u = random_direction(whole, Norm.L2, generator)[index]
            x_noise = x + random_step_in_box(x, l2, bounds.box_lo, bounds.box_hi, generator, u=u)
            noise_flip += (fake & (scorer.forward(x_noise) >= tau)).to(s.dtype)
    if noise_draws:
        noise_flip /= noise_draws

    eps_star = torch.full_like(s, math.nan)
    ratio = torch.full_like(s, math.nan)
    diagnostics: list[Diagnostic] = []
    if min_norm is not None:
        # the first k probes, attacked inside the whole scored batch: under batch statistics a
        # slice x[:k] would be another decision function than the one that scored s
        k = n if min_norm_probes is None else min(n, min_norm_probes)
        rows = torch.arange(n, device=x.device) if index is None else index.to(x.device)
        first_k = rows < (k if min_norm_probes is None else min_norm_probes)
        # an update that flips a sample is an adversarial of size norm(p): eps* <= norm(p), and the
        # search starts there
        result = min_norm.starting_from(x_next)(scorer, x, direction=F2R, seed=seed, active=first_k)
        eps_star = torch.where(result.attacked, result.norms, torch.full_like(result.norms, math.nan))
        diagnostics = result.diagnostics
        ratio = min_norm.norm.of(p) / eps_star

    samples = {
        "s": s, "s_next": s_next, "fake": fake, "flip": flip, "linf": linf, "l2": l2, "small": small,
        "accidental": accidental, "cos_grad": cos, "cos_z": cos * math.sqrt(dim), "s_pgd": s_pgd,
        "efficiency": efficiency, "noise_flip": noise_flip, "eps_star": eps_star, "ratio": ratio,
    }
    arrays = {k: v.detach().cpu().numpy() for k, v in samples.items()}
    return Measurement(arrays, summarize(arrays, width=bounds.width), diagnostics + eps_star_diagnostics(arrays))


def eps_star_diagnostics(samples: dict[str, np.ndarray]) -> list[Diagnostic]:
    """``eps-star-not-found`` with the count, where the minimum-norm attack found no adversarial for
    fake-classified probes it attacked (eps* inf): never a bare inf median."""
    fake = samples["fake"].astype(bool)
    lost = fake & np.isinf(samples["eps_star"])
    if not lost.any():
        return []
    attacked = fake & ~np.isnan(samples["eps_star"])
    flipped = lost & samples["flip"].astype(bool)
    return [Diagnostic.make("eps-star-not-found", (
        f"no adversarial found for {int(lost.sum())} of {int(attacked.sum())} attacked fake-classified probes "
        f"(their eps* is counted as inf"
        + (f"; {int(flipped.sum())} of them flipped by the update, whose x' inside the data range D does not "
           f"confirm" if flipped.any() else "")
        + ("): the median eps* is inf and says nothing" if 2 * lost.sum() >= attacked.sum() else
           "): the median eps* is an upper bound that they loosen")))]


def random_step_in_box(x: torch.Tensor, radius: torch.Tensor, lo: float, hi: float,
                       generator: torch.Generator, iterations: int = 40, u: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """A random perturbation ``d`` (B, ...) with ``‖d‖₂ = radius`` (B,) and ``x + d`` in ``[lo, hi]``.

    Clamping ``x + r·u`` to the box shortens the step (by up to 12% measured on generator
    samples near ±1), which would make the null control weaker than the update it is held
    against. Instead the ray ``t ↦ clamp(x + t·u) − x`` is followed until its norm, which is
    non-decreasing in ``t``, reaches the radius: bisection on ``t`` per sample. Where even the
    whole ray stays shorter (the radius exceeds the box along ``u``; not seen in practice) the
    step is the ray's end, the farthest point in that direction.
    """
    u = random_direction(x, Norm.L2, generator) if u is None else u  # (B, ...) unit L2 directions
    r = radius.to(x.dtype)

    def length(t: torch.Tensor) -> torch.Tensor:
        return Norm.L2.of((x + _expand(t, x) * u).clamp(lo, hi) - x)

    if bool((length(r) >= r).all()):  # the common case: no pixel reaches the box at t = r
        return (x + _expand(r, x) * u).clamp(lo, hi) - x
    lower = torch.zeros_like(r)
    upper = r.clone()
    # the norm at t is at most t; double until it reaches r (or the ray leaves the box for good)
    far = torch.full_like(r, (hi - lo) * math.sqrt(x[0].numel()) * 2)
    for _ in range(60):
        short = length(upper) < r
        if not short.any():
            break
        lower = torch.where(short, upper, lower)
        upper = torch.where(short, torch.minimum(upper * 2, far), upper)
        if bool((upper[short] >= far[short]).all()):
            break
    for _ in range(iterations):
        mid = (lower + upper) / 2
        short = length(mid) < r
        lower = torch.where(short, mid, lower)
        upper = torch.where(short, upper, mid)
    return (x + _expand(upper, x) * u).clamp(lo, hi) - x


def persistence(s_later: np.ndarray, flip: np.ndarray, tau: float) -> Estimate:
    """Share of flipped samples that D_{t+1} still calls real."""
    flip = flip.astype(bool)
    return clopper_pearson(int(((s_later >= tau) & flip).sum()), int(flip.sum()))


def by_class(samples: dict[str, np.ndarray], num_classes: int | None) -> list[dict[str, Any]]:
    """Flip rate and AAR per class of a conditional GAN's probes (``samples["label"]``, the class
    of each probe's condition): one row per class, rates over that class's fake-classified probes."""
    labels = samples["label"].astype(int)
    k = int(num_classes) if num_classes else int(labels.max()) + 1 if labels.size else 0
    fake = samples["fake"].astype(bool)
    rows = []
    for cls in range(k):
        mine = labels == cls
        n_fake = int((fake & mine).sum())
        rows.append({"class": cls, "n": int(mine.sum()), "n_fake": n_fake,
                     "flip_rate": clopper_pearson(int((samples["flip"].astype(bool) & mine).sum()), n_fake).to_dict(),
                     "aar": clopper_pearson(int((samples["accidental"].astype(bool) & mine).sum()), n_fake).to_dict()})
    return rows
