"""Runs and reports written before the restructure of issue 11 still load, and give the same numbers.

tests/data/run-0.1.0 was written by ganrobust 0.1.0 at commit 7bde3a7 (tests/data/make_run_0_1_0.py);
run-0.1.0-audit.json.gz and run-0.1.0-report.json.gz are what `ganrobust audit` and `ganrobust report`
produced from it then, on one host (an AVX-512 CPU, 1 thread).

"The same numbers" holds on any host within a stated tolerance, never bit for bit: float32 kernels
differ in their last bits between CPUs (AVX2, AVX-512) and thread counts. What is compared, how:

* measured floats: ``math.isclose(rel_tol=REL, abs_tol=ABS)``. Measured on a host without
  avx512_fp16 against the stored files: at most 2.7e-6 relative on every number but the
  efficiencies, ``(s_next − s)/(s_pgd − s)``, whose score differences of ~3e-4 cancel float32
  scores of ~0.2 (ulp 1.5e-8: up to ~1e-4 relative, 4.2e-6 absolute seen);
* counts, strings and flags: exactly;
* facts of the host (``precision.host``: CPU capability and flags) are not measurements: not compared;
* sentences and method descriptions (``verdicts``, ``method``) are text about the numbers: not compared;
* rates were reported with Wilson intervals then and with Clopper–Pearson now (issue 18, item 8): a
  stored rate whose interval was Wilson's of its count now carries that interval (rates read back from
  the run's own records) or Clopper–Pearson's of the same count (rates computed again), and the
  new-batch difference is MOVER's of its two intervals; every other interval is a measured float;
* keys the stored report lacks are new fields (schema ``ganrobust.report/1`` grows, never renames).
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.records import PersistsRecord, StepRecord, from_dict
from ganrobust.runs import read_run, to_jsonable
from ganrobust.stats import INTERVALS, clopper_pearson, wilson

DATA = Path(__file__).parent / "data"
RUN = DATA / "run-0.1.0"
# fields that name where and when a report was made, not what it measured
CIRCUMSTANCES = ("title", "source", "command", "versions", "seconds", "problems")


def _expected(name: str) -> dict:
    with gzip.open(DATA / name, "rt") as f:
        return json.load(f)


REL, ABS = 1e-5, 1e-5
HOST = ("precision", "host")   # where the report says which machine made it
TEXT = ("verdicts", "method")  # sentences about the numbers, not numbers


def _measured(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in CIRCUMSTANCES}


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS) or (math.isnan(a) and math.isnan(b))


def _rate(e: dict) -> float | None:
    """The rate of a stored estimate (``value``; a robustness row's ``success_rate``), None if not one."""
    v = e.get("value", e.get("success_rate"))
    return v if isinstance(v, float) and 0 <= v <= 1 and e.get("n") and e.get("ci_low") is not None else None


def _was_wilson(e: dict) -> bool:
    if _rate(e) is None:
        return False
    w = wilson(_rate(e) * e["n"], e["n"])
    return _close(w.ci_low, e["ci_low"]) and _close(w.ci_high, e["ci_high"])


def _differences(now: Any, then: Any, path: tuple = ()) -> list[str]:
    """Where ``now`` does not hold ``then``'s numbers (within REL/ABS): one line per place."""
    if path[-len(HOST):] == HOST or (path and path[-1] in TEXT):
        return []
    where = "/".join(map(str, path))
    if isinstance(then, dict):
        if not isinstance(now, dict):
            return [f"{where}: {type(now).__name__}, was a dict"]
        if {"ci_low", "ci_high", "n"} <= then.keys() and _was_wilson(then) and isinstance(now.get("ci_low"), float) \
                and not (_close(now["ci_low"], then["ci_low"]) and _close(now["ci_high"], then["ci_high"])):
            # recomputed now: Clopper–Pearson's interval of the same count (rates read back from the run's
            # own records keep the Wilson interval they were written with)
            cp = clopper_pearson(_rate(then) * then["n"], then["n"])
            then = {**then, "ci_low": cp.ci_low, "ci_high": cp.ci_high}
        out = [f"{where}/{k}: missing" for k in then if k not in now]
        return out + [line for k in then if k in now for line in _differences(now[k], then[k], path + (k,))]
    if isinstance(then, list):
        if not isinstance(now, list) or len(now) != len(then):
            return [f"{where}: {len(now) if isinstance(now, list) else now} items, was {len(then)}"]
        return [line for i, (a, b) in enumerate(zip(now, then)) for line in _differences(a, b, path + (i,))]
    if isinstance(then, float) and not isinstance(now, bool) and isinstance(now, (int, float)):
        return [] if _close(float(now), then) else [f"{where}: {now!r}, was {then!r}"]
    return [] if now == then else [f"{where}: {now!r}, was {then!r}"]


def _new_batch_differences_are_mover(report: dict) -> None:
    """Argument 2's difference, trained − fresh, written out here: each side Clopper–Pearson of its
    count (Beta quantiles), and MOVER for independent samples,
    low = d − sqrt((a − a_low)² + (b_high − b)²), high = d + sqrt((a_high − a)² + (b − b_low)²)."""
    from scipy import stats as sp

    nb = report["odena"]["new_batch"]
    assert set(nb["difference"]) == {"aar", "flip_rate"}
    for key, d in nb["difference"].items():
        a, b = nb["trained_batch"][key], nb["fresh_latents"][key]
        for e in (a, b):
            k, n = round(e["value"] * e["n"]), e["n"]
            assert e["ci_low"] == pytest.approx(0.0 if k == 0 else sp.beta.ppf(0.025, k, n - k + 1), abs=1e-12)
            assert e["ci_high"] == pytest.approx(1.0 if k == n else sp.beta.ppf(0.975, k + 1, n - k), abs=1e-12)
        diff = a["value"] - b["value"]
        low = diff - math.sqrt((a["value"] - a["ci_low"]) ** 2 + (b["ci_high"] - b["value"]) ** 2)
        high = diff + math.sqrt((a["ci_high"] - a["value"]) ** 2 + (b["value"] - b["ci_low"]) ** 2)
        assert d["value"] == pytest.approx(diff) and d["n"] == min(a["n"], b["n"])
        assert (d["ci_low"], d["ci_high"]) == pytest.approx((low, high), abs=1e-12), key
        assert d["significant"] == (d["n"] >= 6 and (low > 0 or high < 0))


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
    assert _differences(_measured(report), _measured(_expected("run-0.1.0-report.json.gz"))) == []


def test_its_audit_has_the_numbers_it_had(tmp_path) -> None:
    run = tmp_path / "run-0.1.0"
    shutil.copytree(RUN, run)  # the audit reads the run and writes only under --out
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(tmp_path / "audit"), "--n-probes", "32",
                                      "--k-steps", "2", "--snapshots", "all"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    expected = _expected("run-0.1.0-audit.json.gz")
    expected["odena"]["new_batch"].pop("difference")  # built from Wilson intervals then; checked as MOVER below
    assert _differences(_measured(report), _measured(expected)) == []
    _new_batch_differences_are_mover(report)
    settings = report["source"]["settings"]  # the settings it had, and G's BatchNorm mode and batch stated since
    assert {key: settings[key] for key in expected["source"]["settings"]} == expected["source"]["settings"]
    assert settings["batch_coupling"]["value"]["coupled"] is False  # measured since (issue 19)
    assert settings["g_bn"] == {"value": "batch", "from": "run manifest"}
    assert settings["batch"] == {"value": 64, "from": "default"}  # 0.1.0 recorded no batch: the default, as then
    # the report says which kind of interval each number carries, in a field added to the same schema
    assert report["schema"] == expected["schema"] == "ganrobust.report/1" and report["intervals"] == INTERVALS
    md, html = (tmp_path / "audit" / "summary.md").read_text(), (tmp_path / "audit" / "index.html").read_text()
    assert "## Intervals" in md and 'id="intervals"' in html
    assert all(f"**{kind}**" in md and f"<strong>{kind}</strong>" in html for kind in INTERVALS)
    assert "not run-to-run variation" in md


def test_the_comparison_tolerates_the_last_bits_and_host_facts_but_not_a_change() -> None:
    """What the audit comparison above lets through: another CPU's last bits and its flags; what it
    catches: a number off by more than the tolerance, a changed count, a missing key, a rate whose
    interval is neither what it was nor Clopper–Pearson's."""
    then = _measured(_expected("run-0.1.0-audit.json.gz"))
    now = json.loads(json.dumps(then))
    now["summary"]["linf"]["value"] *= 1 + 3e-7
    now["precision"]["host"]["cpu_flags"] = ["avx2"]
    now["added_later"] = {"value": 1.0}
    assert _differences(now, then) == []
    for change in ("value", "count", "missing", "interval"):
        bad = json.loads(json.dumps(then))
        if change == "value":
            bad["summary"]["linf"]["value"] *= 1.001
        elif change == "count":
            bad["update"]["n_fake"] += 1
        elif change == "missing":
            del bad["summary"]["aar"]
        else:
            bad["summary"]["aar"]["ci_high"] += 0.01
        assert len(_differences(bad, then)) == 1, change


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
    assert _differences(_measured(json.loads((tmp_path / "report.json").read_text())), _measured(before)) == []
