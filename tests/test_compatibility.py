"""Runs and reports written before the restructure of issue 11 still load, and give the same numbers.

tests/data/run-0.1.0 was written by ganrobust 0.1.0 at commit 7bde3a7 (tests/data/make_run_0_1_0.py);
run-0.1.0-audit.json.gz and run-0.1.0-report.json.gz are what `ganrobust audit` and `ganrobust report`
produced from it then.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.records import PersistsRecord, StepRecord, from_dict
from ganrobust.runs import read_run, to_jsonable

DATA = Path(__file__).parent / "data"
RUN = DATA / "run-0.1.0"
# fields that name where and when a report was made, not what it measured
CIRCUMSTANCES = ("title", "source", "command", "versions", "seconds", "problems")


def _expected(name: str) -> dict:
    with gzip.open(DATA / name, "rt") as f:
        return json.load(f)


def _measured(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in CIRCUMSTANCES}


def test_a_run_written_before_reads_with_every_record() -> None:
    run = read_run(RUN)
    assert run.complete and [s.step for s in run.steps] == list(range(3, 31, 3))
    assert sum(s.persists is not None for s in run.steps) == 9  # every measured step but the last
    lines = [json.loads(line) for line in (RUN / "steps.jsonl").read_text().splitlines()]
    for line in lines:  # each record reads back and writes the very line it came from
        record = from_dict(line)
        assert isinstance(record, (StepRecord, PersistsRecord)) and to_jsonable(record.to_dict()) == line


def test_its_report_has_the_numbers_it_had(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["report", str(RUN), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert _measured(report) == _measured(_expected("run-0.1.0-report.json.gz"))


def test_its_audit_has_the_numbers_it_had(tmp_path) -> None:
    run = tmp_path / "run-0.1.0"
    shutil.copytree(RUN, run)  # the audit reads the run and writes only under --out
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(tmp_path / "audit"), "--n-probes", "32",
                                      "--k-steps", "2", "--snapshots", "all"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    expected = _expected("run-0.1.0-audit.json.gz")
    assert _measured(report) == _measured(expected)
    settings = dict(report["source"]["settings"])
    assert settings.pop("batch_coupling")["value"]["coupled"] is False  # measured since (issue 19)
    assert settings == expected["source"]["settings"]


def test_a_report_written_before_renders_again(tmp_path) -> None:
    """`ganrobust report DIR` on an audit directory written before: every page is rendered again
    from its report.json, and the numbers in it are kept as they were."""
    before = _expected("run-0.1.0-audit.json.gz")
    (tmp_path / "report.json").write_text(json.dumps(before))
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "index.html").read_text()
    assert all(f'id="{section}"' in html for section in ("headline", "odena", "robustness", "configuration"))
    assert "accidental-attack rate" in (tmp_path / "summary.md").read_text()
    assert _measured(json.loads((tmp_path / "report.json").read_text())) == _measured(before)
