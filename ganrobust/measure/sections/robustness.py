"""D's robustness at the checkpoint: linf and l2 robustness curves in both directions (fake->real
on the probes, real->fake on the real samples), the median eps*, clean accuracy, and the input
gradient norms at fake, real and interpolated samples."""

from __future__ import annotations

from typing import Any

import torch

from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.conventions import Direction
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section
from ganrobust.scorer import Scorer
from ganrobust.stats import median_ci


def robustness(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    cfg, x = ctx.cfg, ctx.x
    rows: list[dict[str, Any]] = []
    eps_star: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    real_scorer = ctx.base.on(ctx.real_probe_c)
    sets = [("fake->real", x, ctx.scorer)] + ([("real->fake", ctx.real_probe, real_scorer)]
                                              if ctx.real_probe is not None else [])
    for direction, xs, sc in sets:
        for norm, grid in (("linf", cfg.eps_grid), ("l2", tuple(e * cfg.l2_scale for e in cfg.eps_grid))):
            curve = robustness_curve(sc, xs, grid, norm=norm, direction=direction, seed=cfg.seed,
                                     precision=cfg.precision)
            rows += curve.rows()
            eps_star[f"{norm} {direction}"] = curve.median_eps_star.to_dict()
            clean[direction] = curve.clean_accuracy.to_dict()
    return Part({"robustness": rows, "robustness_summary": {
        "median_eps_star": eps_star, "clean_accuracy": clean, "input_gradient_norm": gradient_norms(ctx, real_scorer)}})


def gradient_norms(ctx: AuditContext, real_scorer: Scorer) -> dict[str, Any]:
    """Median ‖∇ₓ margin‖₂ at the probes, at the real samples, and at interpolates between them
    (``alpha`` drawn from the audit's generator; scored with the real sample's condition)."""
    x, real = ctx.x, ctx.real_probe
    out = {"fake": _grad_norms(ctx.scorer, x)}
    if real is not None:
        k = min(len(real), len(x))
        alpha = torch.rand((k,) + (1,) * (x.dim() - 1), generator=ctx.generator).to(ctx.device)
        out["real"] = _grad_norms(real_scorer, real)
        mid = real_scorer.rows(torch.arange(k, device=ctx.device)) if ctx.call.conditional else ctx.scorer
        out["interpolated"] = _grad_norms(mid, alpha * real[:k] + (1 - alpha) * x[:k])
    return out


def _grad_norms(scorer: Scorer, x: torch.Tensor) -> dict[str, float | int]:
    _, _, g = scorer.margin_grad(x, Direction.FAKE_TO_REAL)
    return median_ci(g.reshape(g.shape[0], -1).norm(dim=1).cpu().numpy()).to_dict()


SECTION = Section("robustness", "robustness sweep", robustness)
