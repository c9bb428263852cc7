"""What the reader should know before trusting the numbers: the scorer's checks
(:func:`ganrobust.diagnostics.diagnose_scorer`), the update measurement's, and a D that calls
most real samples fake."""

from __future__ import annotations

from ganrobust.diagnostics import Diagnostic, diagnose_scorer
from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections.base import Part, Section


def diagnostics(ctx: AuditContext, parts: dict[str, Part]) -> Part:
    found = [d.to_dict() for d in diagnose_scorer(ctx.scorer, ctx.x)] + [d.to_dict() for d in ctx.update.diagnostics]
    robustness = parts.get("robustness")
    clean = {} if robustness is None else robustness.entries["robustness_summary"]["clean_accuracy"]
    if ctx.real_probe is not None and clean.get("real->fake", {}).get("value", 1.0) < 0.5:
        found.append(Diagnostic.make(
            "real-called-fake", f"D calls {1 - clean['real->fake']['value']:.0%} of real samples fake "
                                f"(bn={ctx.scorer.bn.value})").to_dict())
    return Part({"diagnostics": found})


SECTION = Section("diagnostics", "diagnostics", diagnostics)
