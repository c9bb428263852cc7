"""Auditing a run as it was recorded: the settings it trained with, the files it wrote (SHA-256),
and what a new user sees on the command line (sigmoid heads, diagnostics, errors)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganrobust import Scorer
from ganrobust.config import AuditConfig
from ganrobust.measure.replay import replay_steps
from ganrobust.runs.settings import configured, resolve_settings, score_spec_for
from ganrobust.runs.checkpoints import CheckpointError, load_gan
from ganrobust.cli.main import cli
from ganrobust.pipeline.compare import _models_at
from ganrobust.config import WatchConfig
from ganrobust.runs import snapshot_file
from ganrobust.runs.store import persisted_steps
from ganrobust.config import TrainConfig
from ganrobust.train import g_loss, train

FAST = ["--n-probes", "16", "--k-steps", "1"]


@pytest.fixture(scope="module")
def hinge_run(tmp_path_factory):
    """A `ganrobust train` run: DCGAN with BatchNorm scored with batch statistics, hinge loss."""
    run = tmp_path_factory.mktemp("runs") / "hinge"
    result = train(TrainConfig(steps=20, batch=16, nz=8, ngf=8, ndf=8, n_data=256, loss="hinge"), run_dir=run,
                   watch_config=WatchConfig(every=10, n_probes=8, snapshot_every=10, bn="batch"))
    return result, run


def test_the_audit_replays_exactly_the_update_the_trainer_makes_next(hinge_run) -> None:
    result, run = hinge_run
    loaded = load_gan(run)
    settings = resolve_settings(loaded)  # no options: what the CLI does by default
    assert {k: (s.value, s.source) for k, s in settings.items() if k in ("bn", "g_loss", "d_loss")} == {
        "bn": ("batch", "run manifest"), "g_loss": ("hinge", "run manifest"), "d_loss": ("hinge", "run manifest")}
    # the checkpoint file on its own sees its run's manifest too
    assert load_gan(run / "checkpoint.pt").train_config["loss"] == "hinge"
    cfg = configured(AuditConfig(batch=16), settings)
    z = torch.randn(16, 8, 1, 1, generator=torch.Generator().manual_seed(3))
    (replayed,) = replay_steps(loaded.G, Scorer.of(loaded.D, score_spec_for(loaded, settings)), loaded.optimizer_g,
                               settings["optimizer"].value, cfg, loaded.latent_shape, 1, z)

    # the trainer's next G step from the same state, by hand: D in train mode, the trainer's g_loss
    G, D = copy.deepcopy(result.G).train(), copy.deepcopy(result.D).train()
    opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt.load_state_dict(result.opt_g.state_dict())
    opt.zero_grad(set_to_none=True)
    g_loss("hinge", D(G(z))).backward()
    opt.step()
    for (name, a), b in zip(replayed.named_parameters(), G.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), name
    assert not torch.equal(next(replayed.parameters()), next(loaded.G.parameters()))


def test_explicit_options_override_what_the_run_recorded(hinge_run, tmp_path) -> None:
    _, run = hinge_run
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(out), *FAST, "--bn", "eval"])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "report.json").read_text())["source"]["settings"]
    assert settings["bn"] == {"value": "eval", "from": "option"}
    assert settings["g_loss"] == {"value": "hinge", "from": "run manifest"}
    assert settings["optimizer"] == {"value": "Adam", "from": "checkpoint"}
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: audit settings:")]
    assert notes == ["note: audit settings: bn=eval (option), kind=logit (run manifest), g_loss=hinge (run manifest), "
                     "d_loss=hinge (run manifest), optimizer=Adam (checkpoint), g_bn=batch (run manifest), "
                     "batch=16 (run manifest)"]


def _flip_tensor_bytes(path: Path, tensor: torch.Tensor) -> None:
    """Flip a few bytes inside ``tensor``'s stored data (not in any header)."""
    data = bytearray(path.read_bytes())
    at = data.find(tensor.detach().contiguous().numpy().tobytes()[:32])
    assert at >= 0
    for i in range(at + 8, at + 12):
        data[i] ^= 0x40
    path.write_bytes(bytes(data))


def _one_error(result) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.split("\n") if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_a_corrupted_checkpoint_is_refused_unless_no_verify(hinge_run, tmp_path) -> None:
    result, run = hinge_run
    copy_ = tmp_path / "run"
    shutil.copytree(run, copy_)
    _flip_tensor_bytes(copy_ / "checkpoint.pt", result.G.state_dict()["main.0.weight"])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_gan(copy_ / "checkpoint.pt")
    error = _one_error(CliRunner().invoke(cli, ["audit", str(copy_), "--out", str(tmp_path / "a"), *FAST]))
    assert "does not match the SHA-256 recorded" in error and "--no-verify" in error
    ok = CliRunner().invoke(cli, ["audit", str(copy_), "--out", str(tmp_path / "b"), *FAST, "--no-verify"])
    assert ok.exit_code == 0, ok.output


def _corrupt_tail(path: Path) -> None:
    """Flip one bit near the end of a safetensors file, which is tensor data (not the header)."""
    data = bytearray(path.read_bytes())
    data[-6] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_corrupted_snapshot_is_refused_unless_no_verify(hinge_run, tmp_path) -> None:
    _, run = hinge_run
    copy_ = tmp_path / "run"
    shutil.copytree(run, copy_)
    (copy_ / "checkpoint.pt").unlink()  # audited from its last snapshot
    last = persisted_steps(copy_)[-1]
    _corrupt_tail(copy_ / snapshot_file(last, "D"))
    error = _one_error(CliRunner().invoke(cli, ["audit", str(copy_), "--out", str(tmp_path / "a"), *FAST]))
    assert "does not match the SHA-256 recorded" in error
    with pytest.raises(CheckpointError, match="SHA-256"):  # what compare reads at each persisted step
        _models_at(copy_, load_gan(run), last, "snapshot")
    ok = CliRunner().invoke(cli, ["audit", str(copy_), "--out", str(tmp_path / "b"), *FAST, "--no-verify"])
    assert ok.exit_code == 0, ok.output


def test_every_snapshot_read_by_audit_snapshots_is_verified(hinge_run, tmp_path) -> None:
    _, run = hinge_run
    copy_ = tmp_path / "run"
    shutil.copytree(run, copy_)
    first = persisted_steps(copy_)[0]
    _corrupt_tail(copy_ / snapshot_file(first, "G_before"))
    args = ["audit", str(copy_), "--out", str(tmp_path / "a"), *FAST, "--snapshots", "all"]
    assert "does not match the SHA-256 recorded" in _one_error(CliRunner().invoke(cli, args))


def test_runs_written_before_hashes_load_as_before(hinge_run, tmp_path) -> None:
    result, run = hinge_run
    copy_ = tmp_path / "run"
    shutil.copytree(run, copy_)
    manifest = json.loads((copy_ / "manifest.json").read_text())
    assert set(manifest["sha256"]) == {"checkpoint.pt"} | {
        snapshot_file(step, kind) for step in persisted_steps(copy_)
        for kind in ("D", "G_before", "G_after", "G_optimizer", "batch")}  # every persisted file is hashed
    del manifest["sha256"]
    (copy_ / "manifest.json").write_text(json.dumps(manifest))
    _flip_tensor_bytes(copy_ / "checkpoint.pt", result.G.state_dict()["main.0.weight"])
    load_gan(copy_)  # nothing recorded, nothing to check against
