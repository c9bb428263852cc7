"""``ganrobust demo`` end to end, shortened: train with the hook, audit, write the report."""

from __future__ import annotations

import json

import pytest
import torch

from click.testing import CliRunner

from ganrobust.cli.main import cli


def test_demo_writes_a_complete_report(tmp_path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--steps", "20", "--every", "10", "--robust-d", "5", "--snapshot-every", "10",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out / "index.html")
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "demo" and [r["step"] for r in report["training"]] == [10, 20]
    assert report["robust_d"]["steps"] == 5 and {"standard", "robust"} <= set(report["robust_d"])
    assert (out / "run" / "checkpoint.pt").exists() and (out / "summary.md").exists()
    # the headline is the run it watched (both measured steps), with the final replay beneath
    h = report["run_headline"]
    assert h["steps"] == 2 and h["mean_flip_rate"]["n"] == 2 and h["worst_flip_rate"]["step"] in (10, 20)
    md = (out / "summary.md").read_text()
    assert md.index("## Over the watched run") < md.index("## The final replayed update")
    assert 'id="run-headline"' in (out / "index.html").read_text()
    # Odena's arguments at both persisted snapshots, above the final checkpoint's
    over = report["odena_over_training"]
    assert over["steps"] == [10, 20] and all("one_step" in r and "param_space" in r for r in over["rows"])
    assert md.index("## Odena's three arguments over training") < md.index("## Odena's three arguments at the final")


def test_demo_rejects_impossible_settings() -> None:
    result = CliRunner().invoke(cli, ["demo", "--steps", "0"])
    assert result.exit_code == 2 and "error:" in result.output


def test_a_failure_while_training_is_one_error_line_on_its_own_line(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    result = CliRunner().invoke(cli, ["demo", "--steps", "2", "--device", "cuda", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error:") and "Traceback" not in result.output
