"""Odena's three arguments at every persisted snapshot: the sweep's k = 1 is the update the hook
measured, the sweep resumes, a run without the step inputs still audits (with a note), and the
verdicts over training follow the numbers."""

from __future__ import annotations

import shutil

import pytest

import ganrobust.pipeline.sweep as sweep_module
from ganrobust.config import AuditConfig, TrainConfig, WatchConfig
from ganrobust.measure.arguments_over_training import arguments_over_training
from ganrobust.pipeline.audit import not_replayed_notes
from ganrobust.pipeline.sweep import audit_run_snapshots
from ganrobust.runs import read_run, snapshot_file
from ganrobust.runs.checkpoints import load_gan
from ganrobust.runs.settings import configured, resolve_settings, score_spec_for
from ganrobust.train import train

CFG = AuditConfig(k_steps=3, pgd_iterations=8, efficiency_steps=2, min_norm_probes=4, eps_grid=(4 / 255, 8 / 255))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "dcgan"
    train(TrainConfig(steps=10, batch=16, nz=8, ngf=8, ndf=8, n_data=128), run_dir=path,
          watch_config=WatchConfig(every=5, snapshot_every=5, n_probes=32, bn="batch", min_norm_every=0,
                                   efficiency_steps=0))
    return path


def _sweep(path, out, tick=None):
    loaded = load_gan(path)
    settings = resolve_settings(loaded)
    return audit_run_snapshots(path, loaded, out, selection="all", cfg=configured(CFG, settings),
                               scorer_options=score_spec_for(loaded, settings), tick=tick)


@pytest.fixture(scope="module")
def swept(run, tmp_path_factory):
    return _sweep(run, tmp_path_factory.mktemp("audit"))


def test_the_sweeps_one_step_flip_rate_is_the_hooks_measured_flip_rate(run, swept) -> None:
    measured = {record.step: record.probe for record in read_run(run).steps}
    assert [s["step"] for s in swept] == [5, 10]
    flipped = 0
    for snapshot in swept:
        odena = snapshot["odena"]
        k1 = odena["one_step"]["steps"][0]
        hook = measured[snapshot["step"]]
        for key in ("flip_rate", "aar"):
            assert k1[key]["n"] == hook[key]["n"] and k1[key]["value"] == pytest.approx(hook[key]["value"], abs=1e-12)
        flipped += round(k1["flip_rate"]["value"] * k1["flip_rate"]["n"])
        assert odena["replay_check"]["max_abs"] <= 1e-6  # the recorded state replays to the recorded G after
        assert [s["k"] for s in odena["one_step"]["steps"]] == [1, 2, 3] and not odena["not_replayed"]
        assert odena["new_batch"]["n_trained"] == 16 and odena["param_space"]["update_size_theta"] > 0
    assert flipped > 0  # the equality is not that of two empty sets


def test_a_killed_sweep_resumes_with_the_steps_it_had_not_finished(run, swept, tmp_path, monkeypatch) -> None:
    def killed(step: int) -> None:
        raise KeyboardInterrupt(f"killed after step {step}")

    with pytest.raises(KeyboardInterrupt):
        _sweep(run, tmp_path, tick=killed)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step_0000005.json"]
    calls = []
    original = sweep_module.audit_snapshot
    monkeypatch.setattr(sweep_module, "audit_snapshot", lambda *a, **k: calls.append(1) or original(*a, **k))
    resumed = _sweep(run, tmp_path)
    assert len(calls) == 1  # step 5 read back, step 10 computed
    assert resumed == swept  # draws keyed by the step: the same as one uninterrupted sweep


def test_a_run_without_the_step_inputs_audits_with_a_note(run, tmp_path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / snapshot_file(5, "G_optimizer")).unlink()  # as with persist_optimizer=False
    for kind in ("G_optimizer", "batch"):  # as written before this version kept them
        (old / snapshot_file(10, kind)).unlink()
    snapshots = _sweep(old, tmp_path / "out")
    five, ten = (s["odena"] for s in snapshots)
    assert set(five["not_replayed"]) == {"one_step"} and [s["k"] for s in five["one_step"]["steps"]] == [1]
    assert "new_batch" in five and "param_space" in five
    assert set(ten["not_replayed"]) == {"one_step", "new_batch", "param_space"} and "one_step" not in ten
    notes = not_replayed_notes(snapshots)
    assert any("no optimizer state" in line and "steps 5" in line for line in notes)
    assert any("no training batch" in line and "steps 10" in line for line in notes)
    over = arguments_over_training(snapshots)
    assert over["verdicts"]["one_step"].startswith("no snapshot measured it (2 snapshot(s) could not replay it")
    assert over["verdicts"]["new_batch"].startswith("at ") and "1 snapshot(s) could not replay it" in \
        over["verdicts"]["new_batch"]


def _est(k: int, n: int) -> dict:
    from ganrobust.stats import wilson

    return wilson(k, n).to_dict()


def _snapshot(step: int, k1: int, kK: int, trained: int, fresh: int, attack: int, real: int) -> dict:
    n = 50
    steps = [{"k": 1, "flip_rate": _est(k1, n), "aar": _est(k1, n)}, {"k": 10, "flip_rate": _est(kK, n), "aar": _est(kK, n)}]
    from ganrobust.stats import difference

    return {"step": step, "odena": {
        "not_replayed": {}, "one_step": {"steps": steps},
        "new_batch": {"trained_batch": {"flip_rate": _est(trained, n)}, "fresh_latents": {"flip_rate": _est(fresh, n)},
                      "difference": {"flip_rate": difference(_est(trained, n), _est(fresh, n))}},
        "param_space": {"parameter_attack": {"flip_rate": _est(attack, n)}, "real_update": {"flip_rate": _est(real, n)},
                        "pixel_pgd_same_norm": {"flip_rate": _est(n, n)}}}}


def test_the_verdicts_over_training_count_the_snapshots_and_pool_over_them() -> None:
    # eight snapshots where 10 steps flip far more than one, then two where neither flips
    snapshots = [_snapshot(25 * i, 2, 40, 10, 2, 6, 2) for i in range(1, 9)] + \
                [_snapshot(25 * i, 0, 0, 0, 0, 0, 0) for i in (9, 10)]
    over = arguments_over_training(snapshots)
    one = over["verdicts"]["one_step"]
    assert one.startswith("at 8 of 10 snapshots k = 10 replayed steps flip more fake-classified probes than one step "
                          "(8 significantly, 0 significantly fewer)")
    pooled = over["pooled"]["one_step"]
    assert pooled["n"] == 10 and pooled["value"] == pytest.approx(0.8 * (40 - 2) / 50)
    assert pooled["ci_low"] > 0 and f"{pooled['value']:+.1%}" in one
    assert over["verdicts"]["new_batch"].startswith("at 8 of 10 snapshots the update flips more on the batch")
    assert over["verdicts"]["param_space"].startswith("at 10 of 10 snapshots a parameter-space attack of the "
                                                      "update's size flips at least as many probes as the real update")


def test_the_report_shows_each_argument_over_training_above_the_final_checkpoint() -> None:
    from ganrobust.report.html import render_html
    from ganrobust.report.text import summary_markdown

    snapshots = [_snapshot(25 * i, 2, 40, 10, 2, 6, 2) for i in range(1, 4)]
    over = arguments_over_training(snapshots)
    report = {"kind": "audit", "odena_over_training": over, "odena": _odena(snapshots[-1])}
    md = summary_markdown({**report, "summary": _summary()})
    assert md.index("## Odena's three arguments over training") < md.index("## Odena's three arguments at the final")
    assert over["verdicts"]["param_space"] in md and "| 75 | 4.0%" in md
    page = render_html({"kind": "audit", "odena_over_training": over, "summary": _summary()}, None)
    for label in ("Argument 1: one step", "Argument 2: new batch", "Argument 3: parameter space"):
        assert f'alt="{label} over training" src="data:image/png;base64,' in page


def _summary() -> dict:
    from ganrobust import metrics

    est = _est(1, 10)
    return {key: est for key in metrics.keys("summary")}


def _odena(snapshot: dict) -> dict:
    odena = snapshot["odena"]
    return {"verdicts": {"one_step": "the final checkpoint's sentence"}, "one_step": {"steps": odena["one_step"]["steps"]},
            "new_batch": odena["new_batch"], "param_space": odena["param_space"]}


def test_compare_lines_up_each_argument_per_run_and_per_arm_against_the_baseline() -> None:
    from ganrobust.measure.arguments_compare import compare_arguments
    from ganrobust.report.arguments_over_training import compare_markdown

    def run(label: str, kK: int) -> dict:
        points = [{"step": s["step"], "odena": s["odena"]} for s in
                  (_snapshot(25 * i, 2, kK + i % 3, 10, 2, 6, 2) for i in range(1, 7))]
        return {"label": label, "points": points}

    results = [run("a0", 10), run("a1", 12), run("b0", 30), run("b1", 34)]
    section = compare_arguments(results, ["std", "std", "rob", "rob"])
    pooled = [r["one_step"]["pooled"]["value"] for r in section["runs"]]
    assert pooled[0] == pytest.approx(sum((10 + i % 3 - 2) / 50 for i in range(1, 7)) / 6)
    assert section["runs"][0]["one_step"]["difference"] is None  # the baseline itself
    assert section["runs"][2]["one_step"]["difference"]["value"] == pytest.approx(pooled[2] - pooled[0])
    (arm,) = section["arm_differences"]
    assert arm["arm"] == "rob" and arm["one_step"]["value"] == pytest.approx((pooled[2] + pooled[3] - pooled[0] - pooled[1]) / 2)
    assert arm["new_batch"]["value"] == pytest.approx(0.0)  # the same batch effect in every run
    md = "\n".join(compare_markdown({"runs": results, "odena_over_training": section}))
    assert "## Odena's three arguments over training" in md and "| rob − std |" in md
    assert "| b0 | Argument 1: one step |" in md and "25: +" in md  # each run's course over its snapshots
