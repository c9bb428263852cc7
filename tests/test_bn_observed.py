"""D's BatchNorm mode is observed at G's step, not guessed: the README's pytorch/examples loop
(D in train mode during G's step, a Sigmoid head) watched with the defaults measures what an
explicit ``bn='batch'`` watch measures, and a loop that puts D in eval mode is scored with running
statistics. Runs record the observed mode; ``audit RUN`` uses it, with G's BatchNorm mode and
the latent batch the run recorded."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import ganrobust
from ganrobust.cli.main import cli
from ganrobust.conventions import BatchNormMode
from ganrobust.hook import WatchNotice
from ganrobust.models import DCGANDiscriminator, DCGANGenerator
from ganrobust.module_state import observed_bn
from ganrobust.runs import read_run

NZ = 8


def _pair() -> tuple[nn.Module, nn.Module]:
    """pytorch/examples' DCGAN pair, small: BatchNorm in both, D ends in nn.Sigmoid."""
    torch.manual_seed(0)
    return DCGANGenerator(nz=NZ, ngf=4, nc=1, image_size=32), DCGANDiscriminator(ndf=4, nc=1, image_size=32, sigmoid=True)


def _readme_loop(netG: nn.Module, netD: nn.Module, steps: int, *, d_eval_for_g: bool = False, b: int = 16) -> None:
    """README "Watching your own training loop" (pytorch/examples' DCGAN loop)."""
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        real = (torch.randn(b, 1, 32, 32, generator=gen) * 0.3 + 0.4).clamp(-1, 1)
        netD.train()
        netD.zero_grad()
        criterion(netD(real), torch.full((b,), 1.0)).backward()
        fake = netG(torch.randn(b, NZ, 1, 1, generator=gen))
        criterion(netD(fake.detach()), torch.full((b,), 0.0)).backward()
        optimizerD.step()
        if d_eval_for_g:
            netD.eval()  # a loop that scores G's step with D's running statistics
        netG.zero_grad()
        criterion(netD(fake), torch.full((b,), 1.0)).backward()
        optimizerG.step()


def _watched(tmp_path, name: str, *, d_eval_for_g: bool = False, **options) -> tuple[object, list[WatchNotice]]:
    G, D = _pair()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ganrobust.watch(G, D, tmp_path / name, kind="prob", every=2, n_probes=32, min_norm_every=0,
                             efficiency_steps=0, snapshot_every=4, **options):
            _readme_loop(G, D, 8, d_eval_for_g=d_eval_for_g)
    notices = [w.message for w in caught if issubclass(w.category, WatchNotice)]
    return read_run(tmp_path / name), notices


def _per_sample(run, key: str) -> np.ndarray:
    return np.concatenate([run.samples(s.step)[key] for s in run.steps])


def test_the_readme_loop_watched_with_defaults_measures_what_bn_batch_measures(tmp_path) -> None:
    default, notices = _watched(tmp_path, "default")
    batch, _ = _watched(tmp_path, "batch", bn="batch")
    running, _ = _watched(tmp_path, "eval", bn="eval")
    assert [s.step for s in default.steps] == [2, 4, 6, 8]
    for key in ("s", "s_next", "flip", "accidental", "noise_flip"):
        np.testing.assert_allclose(_per_sample(default, key).astype(float), _per_sample(batch, key).astype(float),
                                   rtol=1e-6, atol=1e-7, err_msg=key)
    for key in ("flip_rate", "aar"):
        assert [s.probe[key]["value"] for s in default.steps] == pytest.approx(
            [s.probe[key]["value"] for s in batch.steps], nan_ok=True)
    # the two modes score differently on this D: the default above is not equal by accident
    assert np.abs(_per_sample(default, "s") - _per_sample(running, "s")).max() > 1e-3
    # observed, recorded in the manifest, the checkpoint and every step, told once
    assert default.manifest["config"]["bn"] == "auto"
    assert default.manifest["score"]["bn"] == "batch" and default.manifest["score"]["bn_from"] == "observed"
    assert batch.manifest["score"]["bn_from"] == "config"
    assert [s.raw["bn"] for s in default.steps] == ["batch"] * 4
    checkpoint = torch.load(default.dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["score"]["bn"] == "batch"
    assert len(notices) == 1 and "batch statistics" in str(notices[0]) and "generator step 2" in str(notices[0])


def test_a_loop_that_puts_d_in_eval_mode_for_gs_step_is_scored_with_running_statistics(tmp_path) -> None:
    default, notices = _watched(tmp_path, "default", d_eval_for_g=True)
    running, _ = _watched(tmp_path, "eval", d_eval_for_g=True, bn="eval")
    np.testing.assert_allclose(_per_sample(default, "s"), _per_sample(running, "s"), rtol=1e-6, atol=1e-7)
    assert default.manifest["score"]["bn"] == "eval" and [s.raw["bn"] for s in default.steps] == ["eval"] * 4
    assert len(notices) == 1 and "running statistics" in str(notices[0])


def test_observed_bn_reads_the_layers_as_a_forward_would_use_them() -> None:
    _, D = _pair()
    assert observed_bn(D.train()) is BatchNormMode.BATCH
    assert observed_bn(D.eval()) is BatchNormMode.EVAL
    assert observed_bn(nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)).eval()) is BatchNormMode.BATCH
    assert observed_bn(nn.Sequential(nn.Linear(2, 1)).train()) is BatchNormMode.EVAL  # no BatchNorm: modes agree
    with pytest.raises(ValueError, match="auto"):
        ganrobust.Scorer(D, bn="auto")


def test_audit_of_a_run_replays_with_its_recorded_g_bn_and_batch(tmp_path) -> None:
    """A watched loop with G's BatchNorm in eval mode for the probes (g_bn='eval') and a latent batch of
    16: ``audit RUN`` replays with both, and says where each came from."""
    G, D = _pair()
    with ganrobust.watch(G, D, tmp_path / "run", kind="prob", every=2, n_probes=32, g_bn="eval", snapshot_every=4,
                         min_norm_every=0):
        _readme_loop(G, D, 4)
    run = read_run(tmp_path / "run")
    assert run.manifest["score"]["g_bn"] == "eval" and run.manifest["score"]["g_batch"] == 16
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "run"), "--out", str(tmp_path / "audit"),
                                      "--n-probes", "16", "--k-steps", "1", "--snapshots", "last"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    settings = report["source"]["settings"]
    assert settings["g_bn"] == {"value": "eval", "from": "run manifest"}
    assert settings["batch"] == {"value": 16, "from": "run manifest"}
    assert settings["bn"] == {"value": "batch", "from": "run manifest"}  # observed by the hook
    assert report["config"]["g_bn"] == "eval" and report["config"]["batch"] == 16
    assert report["odena"]["new_batch"]["n_trained"] == 16
    # an explicit option wins, and says so
    from ganrobust.runs.checkpoints import load_gan
    from ganrobust.runs.settings import resolve_settings

    chosen = resolve_settings(load_gan(tmp_path / "run"), g_bn="batch", batch=8)
    assert chosen["g_bn"].to_dict() == {"value": "batch", "from": "option"}
    assert chosen["batch"].to_dict() == {"value": 8, "from": "option"}


def test_the_reference_trainer_observes_batch_statistics_and_the_cli_says_so_once(tmp_path, capsys) -> None:
    """The reference trainer keeps D in train mode during G's step, like pytorch/examples: its runs
    record bn='batch' as observed, and the CLI (train, demo) tells it once as a ``note:`` line."""
    from ganrobust.cli.common import watch_notices_as_notes
    from ganrobust.config import TRAINER_WATCH, TrainConfig
    from ganrobust.train import train

    cfg = TrainConfig(data="shapes", steps=4, batch=8, ngf=4, ndf=4, n_data=64)
    with watch_notices_as_notes():
        train(cfg, run_dir=tmp_path / "run", watch_config=TRAINER_WATCH.replace(every=2, min_norm_every=0))
    notes = [line for line in capsys.readouterr().err.splitlines() if "D's BatchNorm scores with" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ganrobust.watch:") and "batch statistics" in notes[0]
    run = read_run(tmp_path / "run")
    assert run.manifest["config"]["bn"] == "auto" and run.manifest["score"]["bn"] == "batch"
    assert run.manifest["score"]["g_batch"] == 8 and [s.raw["bn"] for s in run.steps] == ["batch", "batch"]


def test_compare_generates_with_the_runs_recorded_g_bn_and_batch(tmp_path) -> None:
    """compare draws each run's samples with G's BatchNorm as the run recorded (here running
    statistics) in chunks of the run's latent batch, and says so per run."""
    from ganrobust.config import CompareConfig
    from ganrobust.gan_call import GanCall
    from ganrobust.pipeline.compare import compare_runs

    for name in ("a", "b"):
        G, D = _pair()
        with ganrobust.watch(G, D, tmp_path / name, kind="prob", every=2, n_probes=16, g_bn="eval", snapshot_every=4,
                             min_norm_every=0, efficiency_steps=0):
            _readme_loop(G, D, 4, b=8)
    cfg = CompareConfig(robustness_samples=8, eps_grid=(8 / 255,))
    report = compare_runs([tmp_path / "a", tmp_path / "b"], cfg=cfg)
    run = report["runs"][0]
    assert run["generation"] == {"g_bn": {"value": "eval", "from": "run manifest"},
                                 "batch": {"value": 8, "from": "run manifest"}}
    G, _ = _pair()
    G.load_state_dict(torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["G"])
    Z, _ = GanCall().sample(cfg.robustness_samples, (NZ, 1, 1), torch.Generator().manual_seed(cfg.seed),
                            torch.device("cpu"))
    with torch.no_grad():
        running = G.eval()(Z)
        batch = torch.cat([G.train()(Z[i:i + 8]) for i in range(0, len(Z), 8)])
    np.testing.assert_allclose(run["samples"], running[:16].numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(run["samples"] - batch[:16].numpy()).max() > 1e-3  # the modes differ on this G
