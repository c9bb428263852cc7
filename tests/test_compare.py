"""``ganrobust train`` and ``ganrobust compare`` on small runs: structure, determinism, clean errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganrobust.checkpoints import CheckpointError, load_gan
from ganrobust.cli.main import cli
from ganrobust.compare import CompareConfig, compare_runs, verdicts
from ganrobust.config import WatchConfig
from ganrobust.reporting import COMPARE_SECTIONS
from ganrobust.runs import read_run
from ganrobust.train import TrainConfig, train

SMALL = CompareConfig(quality_samples=400, robustness_samples=16, classifier_steps=40)


def _ring_run(root: Path, method: str) -> Path:
    cfg = TrainConfig(arch="mlp", data="8gaussians", steps=40, batch=64, nz=2, d_training=method, d_eps=0.05,
                      lr=1e-3, betas=(0.5, 0.9), n_data=2000)
    train(cfg, run_dir=root / method, watch_config=WatchConfig(every=5, snapshot_every=20, min_norm_every=2))
    return root / method


@pytest.fixture(scope="module")
def ring_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ring")
    return [_ring_run(root, "standard"), _ring_run(root, "pgd")]


def test_compare_lines_up_rates_robustness_and_quality(ring_runs) -> None:
    report = compare_runs(ring_runs, cfg=SMALL)
    assert report["data"] == "8gaussians" and report["quality"]["measure"] == "ring"
    for run, method in zip(report["runs"], ("standard", "pgd")):
        assert run["label"] == method and run["train_config"]["d_training"] == method
        assert [r["step"] for r in run["training"]] == [5, 10, 15, 20, 25, 30, 35, 40]
        assert [(p["step"], p["source"]) for p in run["points"]] == [(20, "snapshot"), (40, "snapshot")]
        for point in run["points"]:
            assert 0 <= point["quality"]["modes_covered"] <= 8 and point["quality"]["n"] == 400
            for direction in ("fake->real", "real->fake"):
                rob = point["robustness"][direction]
                assert rob["median_eps_star"]["n"] == round(rob["clean_accuracy"]["value"] * 16)
        assert run["samples"].shape == (400, 2)
    diff = report["differences"][0]
    both = [a["aar"]["n"] > 0 and b["aar"]["n"] > 0 for a, b in zip(*(r["training"] for r in report["runs"]))]
    assert diff["run"] == "pgd" and diff["baseline"] == "standard" and diff["aar_paired"]["n"] == sum(both) > 0
    base, other = (r["points"][-1]["quality"]["high_quality"]["value"] for r in report["runs"])
    assert diff["high_quality"]["value"] == pytest.approx(other - base)
    assert any("accidental-attack rate" in v for v in verdicts(report))


def test_compare_is_deterministic_and_leaves_the_global_rng(ring_runs) -> None:
    state = torch.get_rng_state()
    a = compare_runs(ring_runs, cfg=SMALL)
    assert torch.equal(state, torch.get_rng_state())
    b = compare_runs(ring_runs, cfg=SMALL)
    for ra, rb in zip(a["runs"], b["runs"]):
        ra.pop("samples"), rb.pop("samples")
    assert json.dumps(a, default=str) == json.dumps(b, default=str)


def test_compare_cli_writes_the_report_and_rerenders(ring_runs, tmp_path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", *map(str, ring_runs), "--out", str(out), "--label", "<i>std", "--label", "pgd",
            "--quality-samples", "200", "--robustness-samples", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "ganrobust.compare/1" and [r["label"] for r in report["runs"]] == ["<i>std", "pgd"]
    assert "samples" not in report["runs"][0] and (out / "samples.npz").exists()
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "pgd vs &lt;i&gt;std" in html and "<i>std" not in html
    assert all(f'id="{section}"' in html for section in COMPARE_SECTIONS)
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?!data:|#)([a-z]+:|//)""", html, flags=re.I) == []
    assert "| <i>std |" in (out / "summary.md").read_text()
    again = CliRunner().invoke(cli, ["report", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "index.html").read_text().count("data:image/png;base64,") == 4


def test_compare_scores_images_with_the_frechet_distance(tmp_path) -> None:
    runs = []
    for method in ("standard", "fgsm-rs"):
        cfg = TrainConfig(data="shapes", steps=6, batch=16, nz=8, ngf=8, ndf=8, d_training=method, n_data=1200)
        train(cfg, run_dir=tmp_path / method, watch_config=WatchConfig(every=3, snapshot_every=4, n_probes=8,
                                                                          min_norm_every=0, bn="batch"))
        runs.append(tmp_path / method)
    report = compare_runs(runs, cfg=SMALL)
    q = report["quality"]
    assert q["measure"] == "frechet" and q["n"] == 300 and q["classes"] == 3 and q["floor"]["n"] == 300
    for run in report["runs"]:
        assert [(p["step"], p["source"]) for p in run["points"]] == [(4, "snapshot"), (6, "checkpoint")]
        fd = run["points"][-1]["quality"]["frechet"]
        assert fd["ci_low"] <= fd["value"] <= fd["ci_high"] and fd["value"] > q["floor"]["value"]
        assert run["samples"].shape == (16, 3, 32, 32)
    assert "frechet" in report["differences"][0]


def test_compare_refuses_bad_input_with_one_line(ring_runs, tmp_path) -> None:
    runner = CliRunner()
    cases = [
        (["compare", str(ring_runs[0])], "at least two runs"),
        (["compare", str(ring_runs[0]), str(tmp_path)], "not a ganrobust run"),
        (["compare", *map(str, ring_runs), "--label", "one"], "one label per run"),
        (["compare", *map(str, ring_runs), "--quality-samples", "1"], "quality_samples >= 2"),
        (["compare", *map(str, ring_runs), "--eps", "2"], "0 < eps <= 1"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, [*args, "--out", str(tmp_path / "x")])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error:") and message in result.output, result.output
        assert "Traceback" not in result.output


def test_compare_recalibrates_a_critic_at_every_point(tmp_path) -> None:
    runs = []
    for clip in (0.01, 0.05):
        cfg = TrainConfig(arch="mlp", data="8gaussians", steps=10, nz=2, loss="wgan", clip=clip, n_data=500)
        train(cfg, run_dir=tmp_path / str(clip), watch_config=WatchConfig(every=5, snapshot_every=5))
        runs.append(tmp_path / str(clip))
    report = compare_runs(runs, cfg=SMALL)
    assert report["runs"][0]["score"]["kind"] == "critic"
    for run in report["runs"]:
        for point in run["points"]:  # scored against a threshold calibrated at that point (no error for tau=None)
            assert point["robustness"]["real->fake"]["clean_accuracy"]["n"] == 16


def test_compare_refuses_runs_on_different_data(ring_runs, tmp_path) -> None:
    other = tmp_path / "other"
    shutil.copytree(ring_runs[1], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["data"]["name"] = "shapes"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="different data"):
        compare_runs([ring_runs[0], other], cfg=SMALL)


def test_a_run_without_checkpoint_is_compared_and_audited_from_its_last_snapshot(ring_runs, tmp_path) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(ring_runs[0], killed)
    (killed / "checkpoint.pt").unlink()
    loaded = load_gan(killed)
    assert "snapshot" in loaded.source and "step 40" in loaded.notes[0]
    report = compare_runs([ring_runs[0], killed], cfg=SMALL)
    assert [p["step"] for p in report["runs"][1]["points"]] == [20, 40]
    for f in (killed / "snapshots").glob("*"):
        f.unlink()
    with pytest.raises(CheckpointError, match="no persisted snapshot"):
        load_gan(killed)


def test_train_cli_writes_a_run_and_refuses_bad_settings(tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", "--data", "8gaussians", "--steps", "10", "--every", "5", "--snapshot-every",
                                 "5", "--d-training", "r1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = read_run(out)
    assert run.complete and run.manifest["train_config"]["d_training"] == "r1"
    assert run.manifest["train_config"]["arch"] == "mlp" and [s.step for s in run.steps] == [5, 10]
    for args, message in ((["--out", str(out)], "already holds a run"),
                          (["--data", "8gaussians", "--arch", "dcgan"], "needs image data"),
                          (["--arch", "mlp"], "needs vector data"),
                          (["--steps", "0"], "steps >= 1"),
                          (["--data", "nope"], "unknown dataset")):
        result = runner.invoke(cli, ["train", *args] + ([] if "--out" in args else ["--out", str(tmp_path / "n")]))
        assert result.exit_code == 2 and result.output.startswith("error:") and message in result.output, result.output


def test_a_loop_that_raises_marks_the_run_stopped(tmp_path) -> None:
    cfg = TrainConfig(arch="mlp", data="8gaussians", steps=12, nz=2, n_data=500)

    def boom(step: int, _stats: dict[str, float]) -> None:
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "r", watch_config=WatchConfig(every=5), on_step=boom)
    run = read_run(tmp_path / "r")
    assert run.manifest["status"] == "stopped" and "KeyboardInterrupt" in run.manifest["stopped_by"]
    assert not run.complete and any("stopped by an error" in p for p in run.problems)
    assert [s.step for s in run.steps] == [5]


def test_watching_into_an_existing_run_refuses_and_keeps_it(ring_runs) -> None:
    before = (ring_runs[0] / "steps.jsonl").read_bytes()
    cfg = TrainConfig(arch="mlp", data="8gaussians", steps=2, nz=2, n_data=200)
    with pytest.raises(ValueError, match="already holds a ganrobust run"):
        train(cfg, run_dir=ring_runs[0])
    assert (ring_runs[0] / "steps.jsonl").read_bytes() == before
    from torch.optim.optimizer import _global_optimizer_pre_hooks
    assert not _global_optimizer_pre_hooks  # nothing was left registered
