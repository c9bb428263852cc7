"""The audit's sections, registered (StyleGAN2-ADA's ``metric_main`` registry): each is a module
with one function from the :class:`~ganrobust.measure.audit_context.AuditContext` (and the parts
measured before it) to a typed :class:`~ganrobust.measure.sections.base.Part`, and one
:class:`~ganrobust.measure.sections.base.Section` that names its title and rendering. They run in
the order of :data:`SECTIONS`, the order the random draws of an audit have always been taken in;
the progress bar counts those that run. A new section is one module and one line here.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ganrobust.measure.audit_context import AuditContext
from ganrobust.measure.sections import (conditions, diagnostics, images, new_batch, one_step, param_space, provenance,
                                        replayed_update, robust_discriminator, robustness)
from ganrobust.measure.sections.base import Part, Rendering, Section

SECTIONS: list[Section] = [
    replayed_update.SECTION,
    one_step.SECTION,
    new_batch.SECTION,
    param_space.SECTION,
    robustness.SECTION,
    diagnostics.SECTION,
    robust_discriminator.SECTION,
    conditions.SECTION,
    provenance.SECTION,
    images.SECTION,
]

#: the built-in sections' report keys in the order report.json has always listed them; the keys
#: of any other section follow, in the order the sections ran
REPORT_ORDER = ("gan_call", "by_class", "real_samples", "precision", "batch_coupling", "robust_d", "summary", "update",
                "odena", "robustness", "robustness_summary", "diagnostics")

Progress = Callable[[str], None]


def section(name: str) -> Section:
    """The registered section called ``name``."""
    for s in SECTIONS:
        if s.name == name:
            return s
    raise KeyError(f"no audit section {name!r}; registered: {[s.name for s in SECTIONS]}")


def planned(ctx: AuditContext, sections: Sequence[Section]) -> list[Section]:
    """The sections that run for this audit, in order."""
    return [s for s in sections if s.runs(ctx)]


def run_sections(ctx: AuditContext, sections: Sequence[Section], progress: Progress | None = None) -> dict[str, Any]:
    """Every section that runs, in order, then the report's measured sections: their entries (a
    section that does not run leaves its ``absent`` ones), ``samples`` (per-probe arrays) and
    ``images``. ``progress`` is called with each section's title as it starts; a progress object
    with a ``plan(total)`` method is first told how many will run."""
    runs = planned(ctx, sections)
    plan = getattr(progress, "plan", None)
    if callable(plan):
        plan(len(runs))
    parts: dict[str, Part] = {}
    for s in runs:
        if progress is not None:
            progress(s.title)
        parts[s.name] = s.measure(ctx, parts)
    return assembled(sections, parts)


def assembled(sections: Sequence[Section], parts: dict[str, Part]) -> dict[str, Any]:
    """The measured sections of the report from the parts, dotted keys nested."""
    entries: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    images: dict[str, Any] = {}
    for s in sections:
        part = parts.get(s.name)
        for key, value in (s.absent if part is None else part.entries).items():
            head, _, rest = key.partition(".")
            if rest:
                entries.setdefault(head, {})[rest] = value
            else:
                entries[head] = value
        if part is not None:
            samples.update(part.samples)
            images.update(part.images)
    ordered = {key: entries[key] for key in REPORT_ORDER if key in entries}
    rest = {k: v for k, v in entries.items() if k not in ordered}
    tables = [{"heading": s.rendering.heading, "table": s.rendering.table} for s in sections
              if s.rendering is not None and s.name in parts]
    if tables:  # sections without a hand-written layout, shown by summary.md and index.html as tables
        rest["section_tables"] = tables
    return {**ordered, **rest, "samples": samples, "images": images}


__all__ = ["Part", "REPORT_ORDER", "Rendering", "SECTIONS", "Section", "assembled", "planned", "run_sections", "section"]
