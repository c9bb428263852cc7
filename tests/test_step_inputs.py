"""What a persisted step keeps so that Odena's arguments replay exactly there: G's optimizer state
before the step and the step's own batch, written by the run store and checksummed."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from ganrobust import Scorer
from ganrobust.config import AuditConfig, TrainConfig, WatchConfig
from ganrobust.measure.replay import replay_steps
from ganrobust.runs import snapshot_file
from ganrobust.runs.step_inputs import (flatten_optimizer_state, load_optimizer_state, load_training_batch,
                                        unflatten_optimizer_state)
from ganrobust.runs.store import IntegrityError, load_snapshot, persisted_steps
from ganrobust.train import train

TRAIN = TrainConfig(steps=10, batch=16, nz=8, ngf=8, ndf=8, n_data=128)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "dcgan"
    result = train(TRAIN, run_dir=path, watch_config=WatchConfig(every=5, snapshot_every=5, n_probes=8, bn="batch",
                                                                 min_norm_every=0, efficiency_steps=0))
    return result, path


def test_one_step_replayed_from_the_recorded_optimizer_and_batch_is_the_recorded_G_after(run) -> None:
    result, path = run
    assert persisted_steps(path) == [5, 10]
    for step in persisted_steps(path):
        recorded = load_optimizer_state(path, step)
        batch = load_training_batch(path, step)
        assert recorded is not None and batch is not None
        opt_class, state = recorded
        z, c = batch
        assert opt_class == "Adam" and c is None and tuple(z.shape) == (TRAIN.batch, TRAIN.nz, 1, 1)
        # the state G's step started from: Adam had taken step - 1 steps
        assert all(float(entry["step"]) == step - 1 for entry in state["state"].values())
        G_before, G_after, D = copy.deepcopy(result.G), copy.deepcopy(result.G), copy.deepcopy(result.D)
        for module, kind in ((G_before, "G_before"), (G_after, "G_after"), (D, "D")):
            module.load_state_dict(load_snapshot(path, step, kind))
        (replayed,) = replay_steps(G_before, Scorer(D, bn="batch"), state, opt_class, AuditConfig(batch=TRAIN.batch),
                                   (TRAIN.nz, 1, 1), 1, z)
        moved = 0.0
        for (name, a), b, before in zip(replayed.named_parameters(), G_after.parameters(), G_before.parameters()):
            moved = max(moved, float((b - before).abs().max()))
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-7, msg=f"{name} at step {step}")
        assert moved > 1e-6  # the step did move G: the agreement is not that of two unchanged copies


def test_the_step_inputs_are_checksummed_like_every_snapshot(run, tmp_path) -> None:
    _, path = run
    hashes = json.loads((path / "manifest.json").read_text())["sha256"]
    for kind in ("G_optimizer", "batch"):
        assert snapshot_file(5, kind) in hashes
    copy_dir = tmp_path / "run"
    import shutil

    shutil.copytree(path, copy_dir)
    target = copy_dir / snapshot_file(5, "batch")
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="SHA-256"):
        load_training_batch(copy_dir, 5)
    assert load_training_batch(copy_dir, 5, verify=False) is not None


def test_persist_optimizer_off_keeps_the_batch_and_no_optimizer_state(tmp_path) -> None:
    path = tmp_path / "run"
    train(TrainConfig(steps=5, batch=8, nz=8, ngf=8, ndf=8, n_data=64), run_dir=path,
          watch_config=WatchConfig(every=5, snapshot_every=5, n_probes=8, min_norm_every=0, efficiency_steps=0,
                                   persist_optimizer=False))
    assert persisted_steps(path) == [5]
    assert load_optimizer_state(path, 5) is None
    assert load_training_batch(path, 5) is not None


def test_an_optimizer_state_round_trips_through_its_flat_form() -> None:
    w = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = torch.ones_like(w)
    opt.step()
    state = opt.state_dict()
    state["state"][0]["extra"] = 3.5  # a non-tensor entry travels in the metadata
    names, tensors, rest = flatten_optimizer_state(state)
    back = unflatten_optimizer_state(dict(zip(names, tensors)), json.loads(json.dumps(rest)))
    assert back["state"][0]["extra"] == 3.5
    torch.testing.assert_close(back["state"][0]["momentum_buffer"], state["state"][0]["momentum_buffer"])
    again = torch.optim.SGD([torch.nn.Parameter(w.detach().clone())], lr=0.5)
    again.load_state_dict(back)
    assert again.param_groups[0]["momentum"] == 0.9
