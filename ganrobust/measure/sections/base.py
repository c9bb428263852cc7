"""The shape of an audit section: a function from the audit's context (and the parts the sections
before it measured) to a typed :class:`Part`, registered with its title and how it is rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ganrobust.measure.audit_context import AuditContext


@dataclass(frozen=True)
class Rendering:
    """How summary.md and index.html show a section that has no hand-written layout (the built-in
    sections' layouts are written in :mod:`ganrobust.report.text` and :mod:`ganrobust.report.html`):
    the report entry ``table`` (a list of dicts with the same keys) as a table under ``heading``.
    The report lists such sections in ``section_tables``, so a re-render needs no registry."""

    heading: str
    table: str


@dataclass
class Part:
    """What one section measured: report entries (a dotted key nests: ``odena.one_step`` is
    ``report["odena"]["one_step"]``), per-probe arrays added to ``samples.npz``, and image grids."""

    entries: dict[str, Any]
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)


Measure = Callable[[AuditContext, dict[str, Part]], Part]


def always(_ctx: AuditContext) -> bool:
    return True


@dataclass(frozen=True)
class Section:
    """One registered section. ``measure(ctx, parts)`` gets the parts measured before it, by name;
    ``runs(ctx)`` says whether it runs for this audit (the progress bar counts those that do), and
    ``absent`` is what the report holds when it does not."""

    name: str
    title: str  # the progress bar's message while it runs
    measure: Measure
    rendering: Rendering | None = None  # None: no table of its own (or a hand-written layout)
    runs: Callable[[AuditContext], bool] = always
    absent: dict[str, Any] = field(default_factory=dict)
