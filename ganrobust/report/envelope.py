"""The report envelope, built once, here: what every ``report.json`` holds around the measured
sections (schema, kind, title, source, config, score convention, versions, command, time) and
the sentences computed from the numbers. The commands call these builders; nothing else
assembles a report.

    audit_report    ganrobust audit      (schema ganrobust.report/1, kind "audit")
    demo_report     ganrobust demo       (kind "demo")
    run_report      ganrobust report RUN (kind "run": the hook's measured steps)
    compare_report  ganrobust compare    (schema ganrobust.compare/1)
    rerendered      ganrobust report DIR (a report.json read back: restated where its version
                    predates pooled persistence, sentences computed again)
"""

from __future__ import annotations

import time
from typing import Any

from ganrobust.environment import environment
from ganrobust.measure.arguments_over_training import arguments_over_training
from ganrobust.measure.comparison import restate
from ganrobust.measure.overtraining import run_headline
from ganrobust.report.verdicts import compare_verdicts, verdicts
from ganrobust.runs import Run
from ganrobust.errors import InputError
from ganrobust.stats import INTERVALS

REPORT_SCHEMA = "ganrobust.report/1"
COMPARE_SCHEMA = "ganrobust.compare/1"
#: what the audit returns beside the report's sections: the per-sample arrays and image grids
ARRAYS = ("samples", "images")


def with_run_headline(report: dict[str, Any]) -> dict[str, Any]:
    """The report with a ``run_headline`` section when it carries training rows and has none yet."""
    if report.get("training") and not report.get("run_headline"):
        report = {**report, "run_headline": run_headline(report["training"])}
    return report


def _sections(measured: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in measured.items() if k not in ARRAYS}


def audit_report(measured: dict[str, Any], *, source: dict[str, Any], config: dict[str, Any],
                 score: dict[str, Any], command: str, started: float, title: str,
                 snapshots: list[dict[str, Any]] | None = None, run: Run | None = None) -> dict[str, Any]:
    """``ganrobust audit``: the measured sections of :func:`ganrobust.measure.audit.audit_gan` in
    their envelope, with Odena's verdicts, the audited snapshots and, for a run directory, the
    hook's measured steps."""
    report = {"schema": REPORT_SCHEMA, "kind": "audit", "source": source, "config": config, "score": score,
              "versions": environment(), "command": command, "seconds": time.time() - started,
              **_sections(measured), "intervals": dict(INTERVALS)}
    report["odena"]["verdicts"] = verdicts(report)
    if snapshots is not None:
        report["snapshots"] = snapshots
        over = arguments_over_training(snapshots)
        if over is not None:
            report["odena_over_training"] = over
    if run is not None:
        report["training"] = run.training_rows()
    report["title"] = title
    return report


def demo_report(measured: dict[str, Any], *, run: Run, config: dict[str, Any], bounds: tuple[float, float],
                command: str, started: float, snapshots: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``ganrobust demo``: the watched run first (the question is "how often, over training"), the
    final replay beneath."""
    rows = run.training_rows()
    report = {
        "schema": REPORT_SCHEMA, "kind": "demo", "title": "demo: DCGAN-32 on shapes",
        "source": {"run": str(run.dir), "format": "ganrobust demo", "replay": "the trainer's Adam state"},
        "config": config, "score": {"kind": "logit", "bn": "batch", "bounds": list(bounds)},
        "versions": environment(), "command": command, "training": rows, "run_headline": run_headline(rows),
        **_sections(measured), "intervals": dict(INTERVALS),
    }
    report["odena"]["verdicts"] = verdicts(report)
    if snapshots:
        report["snapshots"] = snapshots
        over = arguments_over_training(snapshots)
        if over is not None:
            report["odena_over_training"] = over
    report["seconds"] = time.time() - started
    return report


def run_report(run: Run, *, command: str) -> dict[str, Any]:
    """``ganrobust report RUN``: the hook's measured steps over training, the last step as the
    headline (no replay: ``ganrobust audit RUN`` adds it). ValueError for a run with no step."""
    if not run.steps:
        raise InputError(f"{run.dir} has no measured step yet; nothing to report")
    return {"schema": REPORT_SCHEMA, "kind": "run", "title": str(run.dir),
            "source": {"run": str(run.dir), "format": "run directory", "replay": "measured during training"},
            "summary": run.steps[-1].probe, "training": run.training_rows(),
            "score": {**run.manifest.get("score", {}), "bounds": run.manifest.get("data_range")},
            "config": run.manifest.get("config"),
            "versions": {"ganrobust": run.manifest.get("ganrobust"), "torch": run.manifest.get("torch")},
            "command": command, "problems": run.problems, "intervals": dict(INTERVALS),
            # a conditional GAN: the last step's rates by class
            **({"by_class": run.steps[-1].raw["by_class"]} if run.steps[-1].raw.get("by_class") else {})}


def compare_report(compared: dict[str, Any], *, config: dict[str, Any], command: str, started: float
                   ) -> dict[str, Any]:
    """``ganrobust compare``: the lined-up runs of :func:`ganrobust.pipeline.compare.compare_runs`
    (their sample arrays already taken out) in their envelope, with one sentence per difference."""
    report = {"schema": COMPARE_SCHEMA, "kind": "compare", **compared, "config": config, "versions": environment(),
              "command": command, "seconds": time.time() - started}
    report["verdicts"] = compare_verdicts(report)
    return report


def rerendered(report: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A report read back from its directory, ready to render with this version, and notes on what
    changed: a comparison written before pooled persistence and the minimum-n rules is restated
    from its per-step rows, and a comparison's sentences follow its numbers."""
    notes: list[str] = []
    if report.get("kind") == "compare":
        if restate(report):
            notes.append("a comparison written before pooled persistence and the minimum-n rules: its means, "
                         "persistence and differences were recomputed from its per-step rows")
        report["verdicts"] = compare_verdicts(report)  # sentences follow the numbers, rendered by this version
    return report, notes
