"""Where the numbers come from: which real samples were scored, the search precision on this host,
and D's batch coupling as measured on the probes (:mod:`ganrobust.model_checks`)."""

from __future__ import annotations

from typing import Any

import torch

from ganrobust.attacks.precision import precision_record
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section


def provenance(ctx: AuditContext, _parts: dict[str, Part]) -> Part:
    entries: dict[str, Any] = {}
    if ctx.real is not None and ctx.real_probe is not None and ctx.real_pick is not None:
        labels = ctx.real_labels
        counts = None if labels is None else torch.bincount(
            labels.cpu()[ctx.real_pick.cpu()].long(), minlength=int(labels.max()) + 1).tolist()
        entries["real_samples"] = {"n": int(ctx.real_probe.shape[0]), "of": int(ctx.real.shape[0]),
                                   "class_counts": counts, "draw": f"seeded permutation (seed {ctx.cfg.seed})"
                                                                   + (", stratified by label" if counts else "")}
    entries["precision"] = precision_record(ctx.cfg.precision, ctx.device, scorer=ctx.scorer, x=ctx.x)
    entries["batch_coupling"] = ctx.scorer.coupling_record()
    return Part(entries)


SECTION = Section("provenance", "recording the provenance", provenance)
