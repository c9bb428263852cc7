"""Run directories survive a killed process, and readers say what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganrobust.runs import read_run

TRAINER = """
import sys
from ganrobust.config import WatchConfig
from ganrobust.config import TrainConfig
from ganrobust.train import train
train(TrainConfig(steps=100000, batch=8, nz=8, ngf=8, ndf=8, n_data=64),
      run_dir=sys.argv[1], watch_config=WatchConfig(every=1, n_probes=8, efficiency_steps=1, min_norm_every=0,
                                                    snapshot_every=10**9))
"""


def test_a_run_killed_with_sigkill_keeps_every_completed_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(run_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    steps = run_dir / "steps.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not steps.exists() or steps.read_text().count("\"kind\": \"step\"") < 6):
        time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    complete = [json.loads(line) for line in steps.read_text().split("\n")[:-1]]
    run = read_run(run_dir)
    assert len(run.steps) >= 5
    assert [s.step for s in run.steps] == [r["step"] for r in complete if r["kind"] == "step"]
    assert not run.complete and any("did not finish" in p for p in run.problems)
    for record in run.steps:
        assert run.samples(record.step)["s"].shape == (8,)


def test_a_cut_off_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "ganrobust.run/1", "status": "complete"}))
    good = {"kind": "step", "step": 1, "probe": {}}
    (tmp_path / "steps.jsonl").write_text(json.dumps(good) + "\n" + '{"kind": "step", "st')
    run = read_run(tmp_path)
    assert [s.step for s in run.steps] == [1]
    assert any("cut off" in p for p in run.problems)


@pytest.mark.parametrize("manifest, match", [
    (None, "manifest.json is missing"),
    ("{not json", "not valid JSON"),
    (json.dumps({"schema": "ganrobust.run/99"}), "upgrade ganrobust"),
])
def test_unreadable_runs_are_refused_with_the_reason(tmp_path: Path, manifest, match) -> None:
    if manifest is not None:
        (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(ValueError, match=match):
        read_run(tmp_path)
