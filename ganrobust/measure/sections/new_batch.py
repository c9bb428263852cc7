"""Odena's argument 2, *new batch*: the update measured on the batch it was optimised on against
the held-out probes (:func:`ganrobust.measure.arguments.new_batch`)."""

from __future__ import annotations

from ganrobust.measure import arguments
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section
from ganrobust.measure.update import measure


def new_batch(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    cfg = ctx.cfg
    xt, xt_next = ctx.generate(ctx.G, ctx.Z_train, ctx.C_train), ctx.generate(ctx.steps[0], ctx.Z_train, ctx.C_train)
    trained = measure(ctx.base.on(ctx.C_train), xt, xt_next, eps=cfg.eps, efficiency=ctx.attacks.pixel_efficiency(cfg),
                      seed=cfg.seed)
    return Part({"odena.new_batch": arguments.new_batch(trained.summary, ctx.update.summary, cfg.batch, cfg.n_probes)})


SECTION = Section("new_batch", "argument 2: new batch", new_batch)
