"""Report writers: the only place besides the run store that touches the file system.

``write_audit`` writes ``report.json`` (schema ``ganrobust.report/1``), ``summary.md`` and the
per-sample arrays ``samples.npz``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrobust.runs import to_jsonable


def _fmt(est: dict[str, Any], pct: bool = True) -> str:
    if not est or not est.get("n"):
        return "n/a (n=0)"
    f = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:.3g}")
    return f"{f(est['value'])} [{f(est['ci_low'])}, {f(est['ci_high'])}] (n={est['n']})"


def summary_markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        "# ganrobust audit",
        "",
        f"Source: `{report['source'].get('checkpoint') or report['source'].get('generator')}` "
        f"({report['source']['format']}); replay: {report['source']['replay']}.",
        "",
        "| metric | value [95% interval] (n) | meaning |",
        "| --- | --- | --- |",
        f"| accidental-attack rate | {_fmt(s['aar'])} | share of fake-classified probes the replayed update turned real with linf(p) <= eps |",
        f"| flip rate | {_fmt(s['flip_rate'])} | share turned real, whatever the size |",
        f"| random-direction control | {_fmt(s['noise_flip_rate'])} | flips by a random perturbation of the same L2 size |",
        f"| median ratio ‖p‖ / eps* | {_fmt(s['ratio'], False)} | ~1: the update is as efficient as the best attack |",
        f"| median alignment z | {_fmt(s['cos_z'], False)} | cos(p, ∇D)·sqrt(dim); ~N(0,1) for random directions |",
        f"| median efficiency | {_fmt(s['efficiency'], False)} | score gain of the update / of L2 PGD within ‖p‖₂ |",
        "",
        "## Odena's three arguments",
        "",
    ]
    for key, text in report["odena"].get("verdicts", {}).items():
        lines.append(f"* **{key.replace('_', ' ')}**: {text}")
    lines += ["", "## Robustness of D", "", "| norm | direction | eps (fraction of range) | success rate [95%] | n |",
              "| --- | --- | --- | --- | --- |"]
    for row in report["robustness"]:
        lines.append(f"| {row['norm']} | {row['direction']} | {row['eps']:.4g} | "
                     f"{row['success_rate']:.1%} [{row['ci_low']:.1%}, {row['ci_high']:.1%}] | {row['n']} |")
    lines += ["", f"Command: `{report.get('command', '')}`", ""]
    return "\n".join(lines)


def write_audit(out_dir: Path, report: dict[str, Any], samples: dict[str, np.ndarray],
                images: dict[str, torch.Tensor] | None = None) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(to_jsonable(report), indent=2))
    (out_dir / "summary.md").write_text(summary_markdown(report))
    arrays = dict(samples)
    for key, value in (images or {}).items():
        arrays[f"image_{key}"] = value.numpy()
    np.savez_compressed(out_dir / "samples.npz", **arrays)
