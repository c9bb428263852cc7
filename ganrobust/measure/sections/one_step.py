"""Odena's argument 1, *one step*: the update's rates after k = 1..K replayed steps against the
frozen D, and the iterations of the iterations attack that reach them
(:func:`ganrobust.measure.arguments.one_step`)."""

from __future__ import annotations

import torch

from ganrobust.measure import arguments
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section


def one_step(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    fake = torch.from_numpy(ctx.update.samples["fake"]).to(ctx.device)
    xs_k = [ctx.generate(Gk, ctx.Z, ctx.C) for Gk in ctx.steps]
    return Part({"odena.one_step": arguments.one_step(ctx.scorer, ctx.x, xs_k, fake, ctx.cfg, ctx.attacks.iterations)})


SECTION = Section("one_step", "argument 1: one step", one_step)
