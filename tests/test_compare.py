"""``ganrobust train`` and ``ganrobust compare`` on small runs: structure, determinism, clean errors."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganrobust.runs.checkpoints import CheckpointError, load_gan
from ganrobust.cli.main import cli
from ganrobust.config import CompareConfig
from ganrobust.measure.comparison import _difference, _differences
from ganrobust.pipeline.compare import compare_runs
from ganrobust.report.verdicts import compare_verdicts as verdicts
from ganrobust.data import eight_gaussians
from ganrobust.measure.overtraining import pooled_persistence
from ganrobust.runs.store import load_state
from ganrobust.stats import mean_ci, wilson
from ganrobust.config import WatchConfig
from ganrobust.report.html import COMPARE_SECTIONS
from ganrobust.runs import read_run
from ganrobust.config import TrainConfig
from ganrobust.train import train

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
                assert 0 <= rob["median_eps_star"]["n"] <= 16 and rob["success_at_eps"]["n"] <= 16
        assert run["samples"].shape == (400, 2)
    diff = report["differences"][0]
    assert diff["run"] == "pgd" and diff["baseline"] == "standard" and 0 < diff["aar_paired"]["n"] <= 8
    assert "high_quality" in diff and diff["step"] == {"baseline": 40, "run": 40}
    assert any("accidental-attack rate" in v for v in verdicts(report))


def test_a_run_compared_with_its_own_copy_differs_by_nothing_significant(ring_runs, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ring_runs[0], copy)
    report = compare_runs([ring_runs[0], copy], cfg=SMALL)
    diff = report["differences"][0]
    for key in ("aar_paired", "flip_rate_paired", "high_quality", "success fake->real", "success real->fake"):
        if diff.get(key):
            assert diff[key]["value"] == pytest.approx(0.0, abs=1e-12) and diff[key]["significant"] is False, key
    # an all-zero per-step difference has no variation: no interval, not a zero-width one
    assert math.isnan(diff["aar_paired"]["ci_low"]) and diff["aar_paired"]["note"] == "no variation observed"
    assert all("not" in v and "significant" in v for v in verdicts(report) if "modes covered" not in v)


def _result(label: str, steps: list[int], aar: list[float], n: int = 20) -> dict:
    rows = [{"step": s, "aar": {"value": a, "ci_low": 0.0, "ci_high": 1.0, "n": n},
             "flip_rate": {"value": a, "ci_low": 0.0, "ci_high": 1.0, "n": n}} for s, a in zip(steps, aar)]
    return {"label": label, "training": rows, "points": [],
            "mean_over_training": {"persists": {"value": 0.5, "ci_low": math.nan, "ci_high": math.nan, "n": 1}}}


def test_a_constant_per_step_difference_is_not_significant() -> None:
    steps = list(range(5, 85, 5))
    base = _result("a", steps, [0.1] * len(steps))
    other = _result("b", steps, [0.2] * len(steps))  # +0.1 at every one of 16 steps: no variation to judge by
    d = _differences(base, other, SMALL)
    assert d["aar_paired"]["value"] == pytest.approx(0.1) and d["aar_paired"]["n"] == 16
    assert d["aar_paired"]["significant"] is False and d["persists"]["significant"] is False


def test_the_paired_difference_needs_the_minimum_number_of_shared_steps() -> None:
    base = _result("a", [5, 10, 15, 20, 25], [0.0, 0.1, 0.0, 0.1, 0.0])
    other = _result("b", [5, 10, 15, 20, 25], [0.5, 0.7, 0.6, 0.8, 0.9])  # large, but only 5 shared steps
    d = _differences(base, other, SMALL)
    assert d["aar_paired"]["n"] == 5 and not d["aar_paired"]["significant"]
    more = _differences(_result("a", list(range(1, 9)), [0.0, 0.1] * 4),
                        _result("b", list(range(1, 9)), [0.5, 0.7, 0.6, 0.8] * 2), SMALL)
    assert more["aar_paired"]["n"] == 8 and more["aar_paired"]["significant"]


def test_one_value_per_side_is_never_a_significant_difference() -> None:
    d = _difference(mean_ci([0.5]).to_dict(), mean_ci([0.25]).to_dict())
    assert d["value"] == pytest.approx(-0.25) and d["significant"] is False
    small = _difference(wilson(0, 3).to_dict(), wilson(3, 3).to_dict())  # intervals, but n = 3 < MIN_N
    assert small["significant"] is False


def test_persistence_is_pooled_over_flips_not_averaged_over_steps() -> None:
    # one step with 1 flip that persists, nine steps with 10 flips of which none persists
    rows = [{"persists": {"value": 1.0, "ci_low": 0.2, "ci_high": 1.0, "n": 1}}] + \
        [{"persists": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.3, "n": 10}} for _ in range(9)] + \
        [{"persists": None}]
    p = pooled_persistence(rows)
    assert p["value"] == pytest.approx(1 / 91) and p["n"] == 91 and p["clusters"] == 10  # a mean over steps: 10%
    assert p["ci_low"] <= p["value"] <= p["ci_high"] and "Σ persisted / Σ flips" in p["method"]
    assert math.isnan(pooled_persistence(rows[:3])["ci_low"])  # 3 steps with flips: below the minimum


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
    # an independent calibration: midpoint of mean real and mean fake scores of that point's D, on the
    # same real samples (a fresh ring draw, seed + 1) and the first 16 of G's samples from the same latents
    real = eight_gaussians(16, seed=SMALL.seed + 1).x
    Z = torch.randn((SMALL.quality_samples, 2), generator=torch.Generator().manual_seed(SMALL.seed))[:16]
    for run_dir, run in zip(runs, report["runs"]):
        loaded = load_gan(run_dir)
        taus = []
        for point in run["points"]:
            G, D = copy.deepcopy(loaded.G).eval(), copy.deepcopy(loaded.D).eval()
            G.load_state_dict(load_state(run_dir / "snapshots" / f"g_{point['step']:07d}_after.safetensors"))
            D.load_state_dict(load_state(run_dir / "snapshots" / f"d_{point['step']:07d}.safetensors"))
            with torch.no_grad():
                expected = 0.5 * (D(real).mean().item() + D(G(Z)).mean().item())
            assert point["tau"] == pytest.approx(expected, rel=1e-5, abs=1e-6), (run["label"], point["step"])
            taus.append(point["tau"])
        assert len(set(taus)) == len(taus) > 1  # a threshold per point, not one carried across


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


# -- arms of several seeds (issue 10) -------------------------------------------------------

@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("arms")
    out: dict[str, list[Path]] = {}
    for method in ("standard", "pgd"):
        for seed in (0, 1, 2):
            cfg = TrainConfig(arch="mlp", data="8gaussians", steps=60, batch=64, nz=2, d_training=method, d_eps=0.05,
                              lr=1e-3, betas=(0.5, 0.9), n_data=2000, seed=seed)
            run = root / f"ring-{method}-s{seed}"
            train(cfg, run_dir=run, watch_config=WatchConfig(every=5, snapshot_every=30, min_norm_every=2))
            out.setdefault(method, []).append(run)
    return out


def test_compare_arms_average_over_seeds_with_intervals_and_rerenders(seeded_runs, tmp_path) -> None:
    out = tmp_path / "arms"
    args = ["compare", *[f"--arm={m}=" + ",".join(map(str, runs)) for m, runs in seeded_runs.items()],
            "--out", str(out), "--quality-samples", "200", "--robustness-samples", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [a["name"] for a in report["arms"]] == ["standard", "pgd"] and [a["seeds"] for a in report["arms"]] == [3, 3]
    assert report["arms"][0]["runs"] == ["ring-standard-s0", "ring-standard-s1", "ring-standard-s2"]
    for arm in report["arms"]:
        # independent of compare: each seed's mean AAR over its measured steps, read from steps.jsonl
        per_seed = [np.mean([s.raw["probe"]["aar"]["value"] for s in read_run(d).steps if s.raw["probe"]["aar"]["n"]])
                    for d in seeded_runs[arm["name"]]]
        aar = arm["numbers"]["aar"]
        assert aar["n"] == 3 and aar["value"] == pytest.approx(np.mean(per_seed))
        if max(per_seed) > min(per_seed):
            assert aar["ci_low"] < aar["value"] < aar["ci_high"]
        for key in ("flip_rate", "eps_star fake->real", "high_quality"):
            assert 1 <= arm["numbers"][key]["n"] <= 3, key
    diff = report["arm_differences"][0]
    assert diff["arm"] == "pgd" and diff["baseline"] == "standard" and diff["aar"]["n"] == 3
    assert isinstance(diff["aar"]["significant"], bool)
    # within-run differences pair seed with seed
    assert [(d["run"], d["baseline"]) for d in report["differences"]] == [
        (f"ring-pgd-s{i}", f"ring-standard-s{i}") for i in range(3)]
    assert any(v.startswith("arm pgd (3 seeds) vs standard (3 seeds)") for v in report["verdicts"])
    md = (out / "summary.md").read_text()
    assert "## Over seeds" in md and "Student-t" in md and "Welch" in md
    # the method sentence under "Over seeds" (lost once in a refactor: "seeds of one method; . Within-run")
    assert report["methods"]["arms"] in md and "per arm: mean over its runs (seeds)" in md
    assert 'id="arms"' in (out / "index.html").read_text()
    again = CliRunner().invoke(cli, ["report", str(out)])
    assert again.exit_code == 0, again.output
    assert "## Over seeds" in (out / "summary.md").read_text()


def test_compare_refuses_bad_arms_with_one_line(seeded_runs, tmp_path) -> None:
    std = ",".join(map(str, seeded_runs["standard"]))
    for args, message in ((["--arm", "standard"], "NAME=RUN"),
                          (["--arm", f"standard={std}"], "at least two arms"),
                          (["--arm", f"a={std}", "--arm", f"a={std}"], "given twice"),
                          ([str(seeded_runs["pgd"][0]), "--arm", f"a={std}"], "not both")):
        result = CliRunner().invoke(cli, ["compare", *args, "--out", str(tmp_path / "x")])
        assert result.exit_code == 2 and result.output.startswith("error:") and message in result.output, result.output
        assert "Traceback" not in result.output


def test_a_comparison_written_before_pooling_is_restated_from_its_rows(tmp_path) -> None:
    """The first shapes comparison (one seed per arm) was written with persistence averaged over
    steps and zero-width intervals. Re-rendered, its numbers are recomputed from its stored per-step
    rows: persistence pooled over all flips, with a cluster interval; nothing significant below
    the minimum n."""
    import gzip

    # tests/data keeps that report.json exactly as it was committed then (the figures' samples.npz
    # is not needed: the page renders without it)
    out = tmp_path / "old"
    out.mkdir()
    raw = gzip.decompress((Path(__file__).parent / "data" / "compare-before-pooling.json.gz").read_bytes())
    (out / "report.json").write_bytes(raw)
    before = json.loads(raw)
    assert "methods" not in before
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "recomputed from its per-step rows" in result.stderr
    after = json.loads((out / "report.json").read_text())
    assert "restated" in after["methods"]
    for old, new in zip(before["runs"], after["runs"]):
        assert new["training"] == old["training"]  # the data stay; only the statistics are redone
        flips = [(r["persists"]["value"], r["persists"]["n"]) for r in old["training"] if (r.get("persists") or {}).get("n")]
        pooled = sum(round(v * n) for v, n in flips) / sum(n for _, n in flips)
        assert new["mean_over_training"]["persists"]["value"] == pytest.approx(pooled)
        assert new["mean_over_training"]["persists"]["clusters"] == len(flips)
    md = (out / "summary.md").read_text()
    assert "pooled" in md and (out / "index.html").read_text().count("data:image/png;base64,") >= 3


def test_a_corrupted_checkpoint_stops_compare_with_one_line(ring_runs, tmp_path) -> None:
    """A run whose checkpoint.pt no longer matches its recorded SHA-256 is an error, not a note
    ("cannot be rebuilt") under which the comparison would quietly go on."""
    broken = tmp_path / "broken"
    shutil.copytree(ring_runs[1], broken)
    data = bytearray((broken / "checkpoint.pt").read_bytes())
    state = torch.load(broken / "checkpoint.pt", weights_only=True)["D"]
    weight = next(v for k, v in state.items() if k.endswith("weight"))
    at = data.find(weight.contiguous().numpy().tobytes()[:32])
    assert at >= 0
    data[at + 8] ^= 0x40
    (broken / "checkpoint.pt").write_bytes(bytes(data))
    args = ["compare", str(ring_runs[0]), str(broken), "--quality-samples", "200", "--robustness-samples", "16"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.split("\n") if line.startswith("error:")]
    assert len(errors) == 1 and "SHA-256" in errors[0] and "Traceback" not in result.output, result.output
    ok = CliRunner().invoke(cli, [*args, "--no-verify", "--out", str(tmp_path / "y")])
    assert ok.exit_code == 0, ok.output
