"""The first probes as images: before the update, after it, and after the pixel attack within
each update's own ‖p‖₂ (the perturbation the update could have been), as images leave the tool."""

from __future__ import annotations

import torch

from ganrobust.conventions import Direction, Norm
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section

#: probes shown
SHOWN = 8


def images(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    x, x_next = ctx.x, ctx.x_next
    l2 = Norm.L2.of(x_next - x)
    rows = torch.arange(x.shape[0], device=x.device)
    # attacked inside the whole scored batch, the first SHOWN probes only
    x_pgd = ctx.attacks.pixel.search(ctx.scorer, x, l2.clamp_min(1e-12), direction=Direction.FAKE_TO_REAL,
                                     generator=torch.Generator(device=x.device).manual_seed(ctx.cfg.seed),
                                     active=(l2 > 0) & (rows < SHOWN)).x_adv
    export = ctx.call.export
    return Part({}, images={"x": export(x[:SHOWN]).cpu(), "x_next": export(x_next[:SHOWN]).cpu(),
                            "x_pgd": export(x_pgd[:SHOWN]).cpu()})


SECTION = Section("images", "drawing the probes", images)
