"""A conditional GAN's adapter, and the update's rates by class of the probes' conditions."""

from __future__ import annotations

from typing import Any

from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section
from ganrobust.measure.update import by_class


def conditions(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    entries: dict[str, Any] = {"gan_call": ctx.call.describe()}
    labels = ctx.call.labels(ctx.C)
    if labels is None:
        return Part(entries)
    label = labels.cpu().numpy()
    entries["by_class"] = by_class({**ctx.update.samples, "label": label}, ctx.call.classes)
    return Part(entries, samples={"label": label})


SECTION = Section("conditions", "rates by class", conditions,
                  runs=lambda ctx: ctx.call.conditional)
