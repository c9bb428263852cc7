"""``--robust-d N``: an adversarially fine-tuned copy of D, and the same replayed update measured
against both discriminators (rates, robustness curves, real accuracy, paired differences)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganrobust import metrics
from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.correlated import paired_share_difference
from ganrobust.errors import InputError, param
from ganrobust.measure import arguments
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.replay import finetune_robust_d
from ganrobust.measure.sections.base import Part, Section
from ganrobust.stats import clopper_pearson, significant


def robust_d(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    cfg, scorer, x = ctx.cfg, ctx.scorer, ctx.x
    if ctx.real is None or ctx.real_probe is None:
        raise InputError(f"{param('robust_d_steps')} needs real samples to train on: pass {param('real')}")
    D_rob = finetune_robust_d(ctx.D, ctx.G, ctx.real, steps=ctx.robust_d_steps, latent_shape=ctx.latent_shape, cfg=cfg,
                              bounds=(scorer.bounds.lo, scorer.bounds.hi), call=ctx.call, real_c=ctx.real_c)
    rob_scorer = ctx.scorer_for(D_rob)  # a critic's threshold belongs to its own snapshot
    same = ctx.measure(rob_scorer, x, ctx.x_next)
    pair = (("standard", scorer), ("robust", rob_scorer))
    rows = [{**r, "discriminator": which} for which, sc in pair
            for r in robustness_curve(sc, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                                      precision=cfg.precision).rows()]
    real = ctx.real_probe
    accuracy = {which: clopper_pearson(int((sc.on(ctx.real_probe_c).score(real) >= sc.tau).sum()),
                                       real.shape[0]).to_dict() for which, sc in pair}
    return Part({"robust_d": {
        "steps": ctx.robust_d_steps, "real_called_real": accuracy,
        "method": f"pgd linf eps={cfg.eps:.4g}, 5 steps, both directions, {cfg.d_loss} loss",
        "tau": {"standard": scorer.tau, "robust": rob_scorer.tau},
        "standard": arguments.rates(ctx.update.summary), "robust": arguments.rates(same.summary), "robustness": rows,
        "difference": paired_differences(same.samples, ctx.update.samples)}})


def paired_differences(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, Any]:
    """``a − b`` over the same probes and update scored by two Ds (per-sample arrays ``a``, ``b``),
    with Newcombe's paired interval, for every share of the registry view ``paired``: each side's
    share is over its own D's fake-classified probes."""
    out: dict[str, Any] = {}
    for m in metrics.view("paired"):
        fa, fb = a["fake"].astype(bool), b["fake"].astype(bool)
        d = paired_share_difference(a[m.field].astype(float), fa, b[m.field].astype(float), fb)
        out[m.key] = {**d.to_dict(), "method": "Newcombe paired (same probes, two Ds)", "significant": significant(d)}
    return out


SECTION = Section("robust_d", "fine-tuning a robust D", robust_d,
                  runs=lambda ctx: ctx.robust_d_steps > 0, absent={"robust_d": None})
