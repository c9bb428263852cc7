"""watch(..., overlap=True): the measurement thread writes the records the synchronous hook
writes, and training stays bit-identical (issue 22). Speed is measured in benchmarks/watch.py."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ganrobust import watch
from ganrobust.background import overlap_decision
from ganrobust.config import TrainConfig, WatchConfig
from ganrobust.train import train

# every measured step a min-norm attack, snapshots persisted twice, the training batch measured
CFG = TrainConfig(steps=6, batch=16, nz=16, ngf=8, ndf=8, n_data=256)
WATCH = WatchConfig(every=2, n_probes=16, snapshot_every=4, min_norm_every=1, min_norm_probes=4, efficiency_steps=2)


def _records(run_dir) -> list[dict]:
    out = []
    for line in (run_dir / "steps.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("seconds", None)  # wall time of the measurement: the one field that may differ
        out.append(record)
    return out


def _tensors(run_dir, sub: str) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: load_file(p) for p in sorted((run_dir / sub).glob("*.safetensors"))}


def test_overlap_writes_the_records_of_the_synchronous_hook_and_training_is_bit_identical(tmp_path) -> None:
    plain = train(CFG)
    rng_plain = torch.get_rng_state()
    sync = train(CFG, run_dir=tmp_path / "sync", watch_config=WATCH)
    overlap = train(CFG, run_dir=tmp_path / "overlap", watch_config=WATCH.replace(overlap=True))
    rng_overlap = torch.get_rng_state()
    for a, b in ((plain, sync), (plain, overlap)):
        for ma, mb in ((a.G, b.G), (a.D, b.D)):
            sa, sb = ma.state_dict(), mb.state_dict()
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert a.history == b.history
    assert torch.equal(rng_plain, rng_overlap)

    records = _records(tmp_path / "sync")
    kinds = [r["kind"] for r in records]
    assert kinds.count("step") == CFG.steps // WATCH.every and "persists" in kinds and "error" not in kinds
    assert records == _records(tmp_path / "overlap")
    for sub in ("samples", "snapshots"):
        a, b = _tensors(tmp_path / "sync", sub), _tensors(tmp_path / "overlap", sub)
        assert a.keys() == b.keys() and a
        for name in a:
            assert a[name].keys() == b[name].keys()
            # bit for bit, NaN (eps_star of probes not attacked) included
            assert all(a[name][k].numpy().tobytes() == b[name][k].numpy().tobytes() for k in a[name]), (sub, name)


@pytest.mark.parametrize("setting, sharded, device, threads, cores, used", [
    ("auto", False, "cpu", 1, 2, True), ("auto", False, "cpu", 2, 2, False), ("auto", True, "cpu", 1, 2, False),
    ("auto", False, "cuda", 1, 2, False), (True, False, "cpu", 2, 2, True), (True, True, "cpu", 1, 2, False),
    (False, False, "cpu", 1, 8, False),
])
def test_auto_overlaps_only_a_single_process_cpu_loop_that_leaves_a_core_idle(setting, sharded, device, threads,
                                                                             cores, used) -> None:
    got, why = overlap_decision(setting, sharded=sharded, device=torch.device(device), threads=threads, cores=cores)
    assert got is used and why


class NoisyD(nn.Module):
    """A D that draws from the global RNG while it is scored (instance noise inside forward)."""

    def __init__(self, noisy: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.noisy = noisy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noisy:
            x = x + 1e-3 * torch.randn_like(x)
        return self.net(x).squeeze(1)


def _loop(run_dir, noisy: bool, **watch_options):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2), nn.Tanh())
    D = NoisyD(noisy)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    watcher = None if run_dir is None else watch(G, D, run_dir, every=2, n_probes=16, min_norm_probes=4,
                                                  snapshot_every=4, **watch_options)
    for _ in range(8):
        real = torch.rand(16, 2) * 2 - 1
        fake = G(torch.randn(16, 4))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        F.softplus(-D(fake)).mean().backward()
        opt_g.step()
    if watcher is not None:
        watcher.close()
    return [p.detach().clone() for p in (*G.parameters(), *D.parameters())], torch.get_rng_state()


@pytest.mark.parametrize("noisy, overlap", [(False, "auto"), (True, "auto"), (False, True)],
                         ids=["auto-quiet-d", "auto-d-draws-from-the-rng", "overlap-no-batchnorm"])
def test_the_thread_never_moves_the_loops_rng_and_writes_the_records_of_the_synchronous_hook(
        tmp_path, monkeypatch, noisy, overlap) -> None:
    """With a core idle, 'auto' measures on the thread; a D that draws from the global RNG while
    scored keeps the hook on the training thread (on the thread its draws would move the loop's RNG).
    A D without batch statistics has its batch coupling measured once, under a seeded RNG: on the
    training thread, never on the measurement thread (where it reseeded the loop's RNG)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain = _loop(None, noisy)
        sync = _loop(tmp_path / "sync", noisy, overlap=False)
        run = _loop(tmp_path / "run", noisy, overlap=overlap)
    finally:
        torch.set_num_threads(threads)
    for watched in (sync, run):
        assert all(torch.equal(a, b) for a, b in zip(plain[0], watched[0])) and torch.equal(plain[1], watched[1])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["overlap"]["used"] is (not noisy), manifest["overlap"]
    assert ("global RNG" in manifest["overlap"]["why"]) is noisy
    assert _records(tmp_path / "sync") == _records(tmp_path / "run")
