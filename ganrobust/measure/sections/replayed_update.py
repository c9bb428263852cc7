"""The headline section: the next generator update, replayed from G's optimizer state against the
frozen D, measured on the held-out probes (:func:`ganrobust.measure.update.measure`)."""

from __future__ import annotations

from ganrobust import metrics
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section


def replayed_update(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    """``summary`` (the registry's headline metrics, n, n_fake, tau) and ``update`` (every metric)."""
    update = ctx.update
    summary = {**{key: update.summary[key] for key in metrics.keys("summary")},
               "n": update.summary["n"], "n_fake": update.summary["n_fake"], "tau": ctx.scorer.tau}
    return Part({"summary": summary, "update": update.summary}, samples=update.samples)


SECTION = Section("update", "replaying and measuring the next generator update", replayed_update)
