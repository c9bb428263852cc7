"""The hook's step measurer alone is pure: given a run's persisted snapshot D_t, G before and after
the step and the probes, it returns the record and per-sample arrays the watcher wrote."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

import ganrobust
from ganrobust.config import WatchConfig
from ganrobust.conventions import BatchNormMode
from ganrobust.gan_call import DEFAULT
from ganrobust.runs import read_run
from ganrobust.runs.store import load_snapshot, to_jsonable
from ganrobust.scorer import Scorer
from ganrobust.watching.measurer import min_norm_attack, probe_rows, step_record
from ganrobust.watching.steps import RankRows

CFG = WatchConfig(every=1, n_probes=16, snapshot_every=100, persist_measured=True, min_norm_every=1,
                  min_norm_probes=4, efficiency_steps=2, bounds=(-4, 4), precision="fp32", overlap=False)


def _pair():
    torch.manual_seed(1)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    return G, D


def _watched_run(run_dir) -> None:
    G, D = _pair()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.SGD(D.parameters(), 1e-2)
    torch.manual_seed(0)
    with ganrobust.watch(G, D, run_dir, config=CFG):
        opt_d.zero_grad()
        (nn.functional.softplus(D(G(torch.randn(8, 4)).detach())).mean()
         + nn.functional.softplus(-D(torch.rand(8, 2))).mean()).backward()
        opt_d.step()
        opt_g.zero_grad()
        nn.functional.softplus(-D(G(torch.randn(8, 4)))).mean().backward()
        opt_g.step()


def _loaded(module: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    module.load_state_dict(state)
    return module.requires_grad_(False)


def test_the_pure_measurer_returns_the_watchers_record_for_the_persisted_snapshot_and_probes(tmp_path) -> None:
    _watched_run(tmp_path / "run")
    run = read_run(tmp_path / "run")
    written = run.steps[0]
    G_before, D_t = _pair()
    G_after, _ = _pair()
    _loaded(G_before, load_snapshot(run.dir, 1, "G_before"))
    _loaded(G_after, load_snapshot(run.dir, 1, "G_after"))
    _loaded(D_t, load_snapshot(run.dir, 1, "D"))
    Z = run.probes()
    with torch.no_grad():
        x, x_next = G_before(Z), G_after(Z)
    scorer = Scorer(D_t, bounds=CFG.bounds, bn=BatchNormMode.EVAL)
    scorer.check_batch(x)
    rows = torch.arange(CFG.n_probes)
    samples = probe_rows(scorer, DEFAULT, CFG, step=1, x=x, x_next=x_next, rows=rows, C=None,
                         min_norm=min_norm_attack(CFG), sharded=False)
    measured = step_record([RankRows(rows.numpy(), samples)], DEFAULT, step=1, n_probes=CFG.n_probes,
                           width=scorer.bounds.width, d_steps=1, tau=scorer.tau, phase="Gmain", bn="eval", C=None)
    record = json.loads(json.dumps(to_jsonable(measured.record.to_dict())))
    assert record["probe"] == written.raw["probe"]
    assert (record["step"], record["d_steps"], record["tau"], record["phase"]) == (1, 1, written.raw["tau"], "Gmain")
    on_disk = run.samples(1)
    assert set(measured.arrays["probe"]) == set(on_disk)
    for key, values in measured.arrays["probe"].items():
        assert np.array_equal(values, on_disk[key], equal_nan=values.dtype.kind == "f"), key
    assert measured.record.samples == {} and "train" not in measured.arrays  # no batch given, nothing written
