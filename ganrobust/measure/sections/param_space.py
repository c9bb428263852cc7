"""Odena's argument 3, *parameter space*: a parameter step of the update's size against the real
update and the pixel attack at the same pixel norm (:func:`ganrobust.measure.arguments.param_space`)."""

from __future__ import annotations

from ganrobust.measure import arguments
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section


def param_space(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    return Part({"odena.param_space": arguments.param_space(
        ctx.G, ctx.base, ctx.scorer, ctx.x, ctx.Z, ctx.C, ctx.Z_train, ctx.C_train, ctx.update_size,
        ctx.update.summary, ctx.cfg, ctx.call, ctx.attacks)})


SECTION = Section("param_space", "argument 3: parameter space", param_space)
