"""The audit: an exact replay, Odena's three experiments, and the command end to end."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner

from ganrobust import Scorer
from ganrobust.config import AuditConfig
from ganrobust.measure.audit import audit_gan
from ganrobust.measure.replay import generator_loss, replay_steps
from ganrobust.cli.main import cli
from ganrobust.config import WatchConfig
from ganrobust.config import TrainConfig
from ganrobust.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small DCGAN trained by the reference trainer with the hook on."""
    run = tmp_path_factory.mktemp("runs") / "dcgan"
    result = train(TrainConfig(steps=150, batch=32, nz=16, ngf=16, ndf=16, n_data=2000), run_dir=run,
                   watch_config=WatchConfig(every=50, n_probes=16))
    return result, run


def test_replay_is_identical_to_a_step_taken_by_hand(trained) -> None:
    result, _ = trained
    G, D, opt = result.G, result.D, result.opt_g
    cfg = AuditConfig(batch=8, g_lr=5e-2, g_betas=(0.9, 0.9))  # not the state's: the loaded ones must win
    z = torch.randn(8, 16, 1, 1, generator=torch.Generator().manual_seed(5))
    (replayed,) = replay_steps(G, Scorer(D), opt.state_dict(), "Adam", cfg, (16, 1, 1), 1, z)

    by_hand = copy.deepcopy(G).train()
    hand_opt = torch.optim.Adam(by_hand.parameters(), lr=2e-4, betas=(0.5, 0.999))
    hand_opt.load_state_dict(opt.state_dict())
    d = copy.deepcopy(D).eval().requires_grad_(False)
    hand_opt.zero_grad()
    generator_loss("ns", d(by_hand(z))).backward()
    hand_opt.step()
    for a, b in zip(replayed.parameters(), by_hand.parameters()):
        assert torch.equal(a, b)
    # G's buffers (BatchNorm running statistics) are G's own: the step's training-mode forward moved
    # them by hand, which is no part of G's update (a zero step must measure p = 0)
    for a, b in zip(replayed.buffers(), G.buffers()):
        assert torch.equal(a, b)
    assert not torch.equal(next(G.parameters()), next(replayed.parameters()))  # the original is untouched


def test_three_experiments_on_a_trained_dcgan(trained, monkeypatch) -> None:
    import ganrobust.measure.arguments as audit_module  # where argument 3 calls the attack

    result, _ = trained
    cfg = AuditConfig(n_probes=48, batch=16, k_steps=4, pgd_iterations=20, efficiency_steps=3, min_norm_probes=8,
                      eps_grid=(1 / 255, 4 / 255, 16 / 255))
    real = result.data.x[:48]
    ascended_on = []
    original_attack = audit_module.param_space_attack

    def spy(G, scorer, z, size, bn, *rest):
        ascended_on.append(z.clone())
        return original_attack(G, scorer, z, size, bn, *rest)

    monkeypatch.setattr(audit_module, "param_space_attack", spy)
    report = audit_gan(result.G, result.D, scorer_options={"bn": "batch"}, latent_shape=(16, 1, 1),
                       opt_state=result.opt_g.state_dict(), opt_class="Adam", cfg=cfg, real=real)
    steps = report["odena"]["one_step"]["steps"]
    assert [s["k"] for s in steps] == [1, 2, 3, 4]
    # k = 1 is the replayed update itself, measured through another path
    assert steps[0]["flip_rate"] == report["update"]["flip_rate"] and steps[0]["aar"] == report["update"]["aar"]
    n_fake = report["update"]["n_fake"]
    pgd = report["odena"]["one_step"]["pgd"]
    assert [r["iterations"] for r in pgd] == list(range(21)) and all(r["flip_rate"]["n"] == n_fake for r in pgd)
    own = report["odena"]["one_step"]["pgd_own_budget"]
    assert [o["k"] for o in own] == [1, 4] and all(r["flip_rate"]["n"] == n_fake for o in own for r in o["pgd"])
    assert "pgd_iterations_for_same_aar" in steps[1] and steps[1]["pgd_iterations_for_same_flip_rate"] is None
    nb = report["odena"]["new_batch"]
    assert nb["n_trained"] == 16 and nb["fresh_latents"]["flip_rate"]["n"] == n_fake
    d = nb["difference"]["flip_rate"]
    assert d["value"] == pytest.approx(nb["trained_batch"]["flip_rate"]["value"] - nb["fresh_latents"]["flip_rate"]["value"])
    assert d["ci_low"] <= d["value"] <= d["ci_high"] and d["significant"] == (d["ci_low"] > 0 or d["ci_high"] < 0)
    # argument 3 ascends on the batch the real update used (16 latents), not on the 48 probes
    (z_attack,) = ascended_on
    assert z_attack.shape[0] == cfg.batch
    ps = report["odena"]["param_space"]
    assert ps["update_size_theta"] > 0 and ps["attacked_on"].startswith("training batch")
    # pixel PGD at the parameter attack's pixel norm is the pixel-space optimum: it flips at least as much
    assert ps["pixel_pgd_same_norm"]["flip_rate"]["value"] >= ps["parameter_attack"]["flip_rate"]["value"]
    rows = report["robustness"]
    assert {(r["norm"], r["direction"]) for r in rows} == {("linf", "fake->real"), ("l2", "fake->real"),
                                                          ("linf", "real->fake"), ("l2", "real->fake")}
    assert set(report["robustness_summary"]["input_gradient_norm"]) == {"fake", "real", "interpolated"}


def test_argument_1_attacks_the_whole_scored_batch_under_batch_statistics(trained, monkeypatch) -> None:
    """bn='batch': PGD's curve for argument 1 must attack the probes inside the batch that scored
    them (with a mask), never the fake-only sub-batch, whose statistics make another D."""
    from ganrobust.scorer import Scorer as ScorerClass

    result, _ = trained
    cfg = AuditConfig(n_probes=48, batch=16, k_steps=2, pgd_iterations=4, efficiency_steps=2, min_norm_probes=4,
                      eps_grid=(4 / 255,))
    seen: list[int] = []
    original = ScorerClass.forward

    def forward(self, x):
        seen.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(ScorerClass, "forward", forward)
    report = audit_gan(result.G, result.D, scorer_options={"bn": "batch"}, latent_shape=(16, 1, 1),
                       opt_state=result.opt_g.state_dict(), opt_class="Adam", cfg=cfg)
    n_fake = report["update"]["n_fake"]
    assert 0 < n_fake < 48  # a fake-only sub-batch would have another size
    assert set(seen) <= {48, 16}  # the probes, the training batch: whole batches only


def test_same_seed_same_numbers(trained) -> None:
    result, _ = trained
    cfg = AuditConfig(n_probes=16, batch=8, k_steps=2, pgd_iterations=5, efficiency_steps=2, min_norm_probes=4,
                      eps_grid=(4 / 255,))
    a = audit_gan(result.G, result.D, scorer_options={}, latent_shape=(16, 1, 1), cfg=cfg)
    b = audit_gan(result.G, result.D, scorer_options={}, latent_shape=(16, 1, 1), cfg=cfg)
    assert json.dumps(a["summary"]) == json.dumps(b["summary"])
    assert a["robustness"] == b["robustness"]


def test_audit_command_on_a_run_directory(trained, tmp_path) -> None:
    _, run = trained
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(out), "--json", "--n-probes", "32",
                                      "--k-steps", "2", "--data", "shapes"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    for key in ("aar", "flip_rate", "noise_flip_rate"):
        assert set(summary[key]) == {"value", "ci_low", "ci_high", "n"}
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "ganrobust.report/1"
    assert report["source"]["replay"] == "checkpoint optimizer state"
    for key in ("one_step", "new_batch", "param_space", "verdicts"):
        assert key in report["odena"]
    assert {"norm", "direction", "eps", "success_rate", "n"} <= set(report["robustness"][0])
    assert (out / "summary.md").exists() and (out / "samples.npz").exists()
    assert "config" in report and "versions" in report


def test_replay_leaves_the_given_optimizer_state_untouched(trained) -> None:
    result, _ = trained
    state = result.opt_g.state_dict()
    before = {k: {n: t.clone() for n, t in v.items() if torch.is_tensor(t)} for k, v in state["state"].items()}
    replay_steps(result.G, Scorer(result.D), state, "Adam", AuditConfig(batch=4), (16, 1, 1), 2,
                 torch.randn(4, 16, 1, 1))
    for k, tensors in before.items():
        for name, t in tensors.items():
            assert torch.equal(t, state["state"][k][name])


def test_audit_of_persisted_snapshots_resumes(trained, tmp_path) -> None:
    _, run = trained
    out = tmp_path / "snap"
    args = ["audit", str(run), "--out", str(out), "--n-probes", "16", "--k-steps", "2", "--snapshots", "all"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    done = sorted(p.name for p in (out / "snapshots").glob("step_*.json"))
    assert done == ["step_0000100.json"]
    stamp = (out / "snapshots" / done[0]).stat().st_mtime_ns
    second = CliRunner().invoke(cli, args)  # a rerun skips what is finished
    assert second.exit_code == 0 and (out / "snapshots" / done[0]).stat().st_mtime_ns == stamp
    report = json.loads((out / "report.json").read_text())
    assert report["snapshots"][0]["step"] == 100 and report["training"]
    assert "robustness over training" in (out / "index.html").read_text()
    bad = CliRunner().invoke(cli, [*args[:-1], "7"])
    assert bad.exit_code == 2 and "no persisted snapshot" in bad.output


def test_robust_d_swap_measures_the_same_update_against_both(trained, tmp_path) -> None:
    _, run = trained
    out = tmp_path / "rob"
    args = ["audit", str(run), "--out", str(out), "--n-probes", "16", "--k-steps", "2", "--robust-d", "5"]
    assert CliRunner().invoke(cli, args).exit_code == 2  # no --data: nothing to train on
    result = CliRunner().invoke(cli, [*args, "--data", "shapes"])
    assert result.exit_code == 0, result.output
    rob = json.loads((out / "report.json").read_text())["robust_d"]
    assert rob["steps"] == 5 and set(rob["real_called_real"]) == {"standard", "robust"}
    assert {r["discriminator"] for r in rob["robustness"]} == {"standard", "robust"}
    assert 'id="robust-d"' in (out / "index.html").read_text()
