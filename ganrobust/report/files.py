"""Writing and reading report directories: ``report.json`` (schema ``ganrobust.report/1`` or
``ganrobust.compare/1``), ``summary.md``, ``index.html`` and ``samples.npz``. A report directory is
not a run directory: runs are read and written by :mod:`ganrobust.runs` alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrobust.report.envelope import with_run_headline
from ganrobust.report.html import render_compare_html, render_html
from ganrobust.report.text import compare_markdown, summary_markdown
from ganrobust.runs import to_jsonable


def write_report(out_dir: Path, report: dict[str, Any], samples: dict[str, np.ndarray] | None = None,
                 images: dict[str, torch.Tensor] | None = None) -> Path:
    """Write report.json, summary.md, samples.npz (when given) and index.html; returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = with_run_headline(report)
    arrays = dict(samples or {})
    for key, value in (images or {}).items():
        arrays[f"image_{key}"] = value.numpy() if isinstance(value, torch.Tensor) else value
    if arrays:
        np.savez_compressed(out_dir / "samples.npz", **arrays)
    (out_dir / "report.json").write_text(json.dumps(to_jsonable(report), indent=2))
    (out_dir / "summary.md").write_text(summary_markdown(report))
    (out_dir / "index.html").write_text(render_html(report, arrays or None))
    return out_dir / "index.html"


def load_report(directory: Path) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    report = json.loads((directory / "report.json").read_text())
    samples_path = directory / "samples.npz"
    samples = dict(np.load(samples_path)) if samples_path.exists() else None
    return report, samples


def write_compare_report(out_dir: Path, report: dict[str, Any], samples: dict[str, np.ndarray] | None = None) -> Path:
    """Write report.json, summary.md, samples.npz (final samples per run) and index.html; returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples:
        np.savez_compressed(out_dir / "samples.npz", **samples)
    (out_dir / "report.json").write_text(json.dumps(to_jsonable(report), indent=2))
    (out_dir / "summary.md").write_text(compare_markdown(report))
    (out_dir / "index.html").write_text(render_compare_html(report, samples))
    return out_dir / "index.html"
