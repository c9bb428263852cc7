"""The run headline: how often, over training, generator updates were accidental attacks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.measure.overtraining import run_headline


def _row(step: int, aar: float, flip: float, n: int = 50) -> dict:
    return {"step": step, "aar": {"value": aar, "ci_low": 0.0, "ci_high": 1.0, "n": n},
            "flip_rate": {"value": flip, "ci_low": 0.0, "ci_high": 1.0, "n": n}, "persists": None}


def test_the_headline_is_over_the_measured_steps_with_the_worst_step_named() -> None:
    # the demo's situation: most updates flip nothing, two flip 38% and 48% of the probes
    aars = [0.0, 0.0, 0.02, 0.0, 0.3, 0.0, 0.4, 0.0]
    flips = [0.0, 0.04, 0.02, 0.0, 0.38, 0.0, 0.48, 0.0]
    rows = [_row(25 * (i + 1), a, f) for i, (a, f) in enumerate(zip(aars, flips))]
    h = run_headline(rows)
    assert h["steps"] == 8
    assert h["mean_aar"]["value"] == pytest.approx(sum(aars) / 8) and h["mean_aar"]["n"] == 8
    assert h["mean_aar"]["ci_low"] < h["mean_aar"]["value"] < h["mean_aar"]["ci_high"]
    assert h["mean_flip_rate"]["value"] == pytest.approx(sum(flips) / 8)
    hit = h["steps_with_accidental_attack"]  # 3 of 8 steps had at least one accidental attack (0.02·50 = 1)
    assert hit["value"] == pytest.approx(3 / 8) and hit["n"] == 8 and hit["ci_low"] < 3 / 8 < hit["ci_high"]
    assert (h["worst_flip_rate"]["step"], h["worst_flip_rate"]["value"]) == (175, 0.48)
    assert (h["worst_aar"]["step"], h["worst_aar"]["value"]) == (175, 0.4)
    assert "Student-t" in h["method"] and "Clopper–Pearson" in h["method"]


def test_a_short_run_gets_its_means_without_an_interval() -> None:
    h = run_headline([_row(10, 0.1, 0.2), _row(20, 0.0, 0.5)])
    assert h["mean_flip_rate"]["value"] == pytest.approx(0.35) and math.isnan(h["mean_flip_rate"]["ci_low"])
    assert h["worst_flip_rate"]["step"] == 20
    assert run_headline([])["worst_aar"] is None


def test_a_report_without_a_run_headline_still_renders_and_gains_one(tmp_path) -> None:
    committed = Path(__file__).resolve().parents[1] / "reports" / "sample"
    out = tmp_path / "sample"
    shutil.copytree(committed, out)
    # as written before run headlines existed: the same report without that section
    old = json.loads((out / "report.json").read_text())
    old.pop("run_headline", None)
    (out / "report.json").write_text(json.dumps(old))
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["run_headline"]["steps"] == len(report["training"])
    md = (out / "summary.md").read_text()
    assert md.index("## Over the watched run") < md.index("## The final replayed update")
    assert 'id="run-headline"' in (out / "index.html").read_text()
