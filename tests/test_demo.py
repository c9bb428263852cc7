"""``ganrobust demo`` end to end, shortened: train with the hook, audit, write the report."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ganrobust.cli.main import cli


def test_demo_writes_a_complete_report(tmp_path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--steps", "20", "--every", "10", "--robust-d", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out / "index.html")
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "demo" and [r["step"] for r in report["training"]] == [10, 20]
    assert report["robust_d"]["steps"] == 5 and {"standard", "robust"} <= set(report["robust_d"])
    assert (out / "run" / "checkpoint.pt").exists() and (out / "summary.md").exists()


def test_demo_rejects_impossible_settings() -> None:
    result = CliRunner().invoke(cli, ["demo", "--steps", "0"])
    assert result.exit_code == 2 and "error:" in result.output
