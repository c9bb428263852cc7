"""Where a training loop's latents enter G, and which phase a G step belongs to: StyleGAN2-ADA's
phase loop (mapping + synthesis, lazy path-length regularisation), BigGAN's ``G(z, G.shared(y))``,
and a watched run that audits by itself. Stand-ins written here: tests/standin_stylegan_loop.py."""

from __future__ import annotations

import copy
import importlib
import json
import pickle
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import ganrobust
from ganrobust.cli.main import cli
from ganrobust.gan_call import BigGANCall, GanCall, StyleGANCall
from ganrobust.runs import read_run

HERE = str(Path(__file__).parent)
FAST = dict(n_probes=16, min_norm_every=0, efficiency_steps=1, noise_draws=1)


@pytest.fixture()
def loop() -> Iterator[object]:
    """The stand-in StyleGAN module, importable by name (its pickles and class paths resolve)."""
    sys.path.insert(0, HERE)
    try:
        yield importlib.import_module("standin_stylegan_loop")
    finally:
        sys.path.remove(HERE)


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("c_dim", [0, 3])
def test_watch_around_a_stylegan_phase_loop_measures_gmain_and_greg(tmp_path, loop, c_dim) -> None:
    """watch(G, D, dir) around the phase loop: every G optimizer step is measured, Gmain and Greg
    labelled, each with the batch it used (Greg's is the half batch of the path-length penalty);
    training (G, D, G_ema, the penalty's running mean, the RNG) is bit-identical with the hook on,
    and the loop's own deepcopies and pickles of G work."""
    plain = loop.train(*loop.build(c_dim), iterations=5)  # type: ignore[attr-defined]
    G, D = loop.build(c_dim)  # type: ignore[attr-defined]
    watched = loop.train(G, D, iterations=5,  # type: ignore[attr-defined]
                         watch=lambda: ganrobust.watch(G, D, tmp_path / "run", every=1, **FAST))
    for key in ("G", "D", "G_ema"):
        assert _same(plain[key], watched[key]), key
    assert torch.equal(plain["pl_mean"], watched["pl_mean"]) and torch.equal(plain["rng"], watched["rng"])
    assert len(watched["snapshots"]) == 2 and pickle.loads(watched["snapshots"][-1])["G"].z_dim == 8
    lines = _lines(tmp_path / "run")
    assert [x["kind"] for x in lines if x["kind"] == "error"] == []
    steps = [x for x in lines if x["kind"] == "step"]
    # iterations 0..4: Gmain and Greg at 0 and 4, Gmain alone at 1..3 -> 7 G steps
    assert [s["phase"] for s in steps] == ["Gmain", "Greg", "Gmain", "Gmain", "Gmain", "Gmain", "Greg"]
    assert [s["train"]["n"] for s in steps] == [8, 4, 8, 8, 8, 8, 4]
    assert all(s["probe"]["linf"]["value"] > 0 for s in steps)  # the Greg steps change G too
    assert [s["d_steps"] for s in steps] == [0, 0, 2, 1, 1, 1, 0]  # Dmain (+ Dreg at 0) since G's previous step
    run = read_run(tmp_path / "run")
    assert run.manifest["gan_call"]["class"] == "ganrobust.gan_call:StyleGANCall"
    assert run.manifest["gan_call"]["kwargs"]["c_dim"] == c_dim
    assert [r["phase"] for r in run.training_rows()][:2] == ["Gmain", "Greg"]  # reports can separate them


def test_a_run_watched_around_the_stylegan_loop_audits_by_itself(tmp_path, loop) -> None:
    """The run records G's and D's class paths (through the persistent-class wrapper) and their
    init_kwargs, and its adapter: `ganrobust audit RUN` needs no option. Without the code on the
    path it is one line naming what to put there and the options to pass instead."""
    G, D = loop.build(2)  # type: ignore[attr-defined]
    loop.train(G, D, iterations=2,  # type: ignore[attr-defined]
               watch=lambda: ganrobust.watch(G, D, tmp_path / "run", every=2, snapshot_every=2, **FAST))
    models = read_run(tmp_path / "run").manifest["models"]
    assert models["generator"]["class"] == "standin_stylegan_loop:Generator"
    assert models["generator"]["kwargs"]["mapping_kwargs"] == {} and models["discriminator"]["kwargs"]["c_dim"] == 2
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "run"), "--out", str(out), "--n-probes", "16",
                                      "--k-steps", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["gan_call"]["adapter"] == "StyleGANCall" and len(report["by_class"]) == 2
    sys.path.remove(HERE)
    sys.modules.pop("standin_stylegan_loop")
    try:
        result = CliRunner().invoke(cli, ["audit", str(tmp_path / "run"), "--out", str(out)])
    finally:
        sys.path.insert(0, HERE)
        importlib.import_module("standin_stylegan_loop")
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "standin_stylegan_loop:Generator does not import here" in last and "PYTHONPATH" in last
    assert "--generator-class" in last


# -- BigGAN-PyTorch's loop: G(z, G.shared(y)), D(x, y) -------------------------------------
class BigG(nn.Module):
    def __init__(self, classes: int = 4, nz: int = 6, dim: int = 5) -> None:
        super().__init__()
        self.shared = nn.Embedding(classes, dim)
        self.net = nn.Linear(nz + dim, 2)

    def forward(self, z: torch.Tensor, y_embedded: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([z, y_embedded], 1)))


class ProjD(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.net, self.embed = nn.Linear(2, 3), nn.Embedding(classes, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.net(x), 0.2)
        return (h.sum(1) + (h * self.embed(y)).sum(1))


class ReadmeBigGANCall(GanCall):
    """The README's adapter before issue 18: generate only, no mapping of the loop's arguments."""

    def generate(self, G, z, c):  # type: ignore[no-untyped-def]
        return G(z, G.shared(c))


def _biggan_loop(tmp_path: Path, call: GanCall, steps: int = 6) -> list[dict]:
    torch.manual_seed(0)
    G, D = BigG(), ProjD()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-2), torch.optim.Adam(D.parameters(), 1e-2)
    with ganrobust.watch(G, D, tmp_path / "run", call=call, every=1, **FAST):
        for _ in range(steps):
            z, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
            real = torch.randn(8, 2)
            loss_d = F.softplus(-D(real, y)).mean() + F.softplus(D(G(z, G.shared(y)).detach(), y)).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            z, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
            loss_g = F.softplus(-D(G(z, G.shared(y)), y)).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    return _lines(tmp_path / "run")


def test_a_biggan_loop_is_measured_on_its_labels_not_its_embedding(tmp_path) -> None:
    """BigGANCall maps G's second argument (the embedding) back to the labels: every step has its
    probes and its own batch measured, and nothing is an error."""
    lines = _biggan_loop(tmp_path, BigGANCall(4))
    steps = [x for x in lines if x["kind"] == "step"]
    assert len(steps) == 6 and not [x for x in lines if x["kind"] == "error"]
    assert all(s["train"]["n"] == 8 and "train_error" not in s for s in steps)


def test_a_failing_training_batch_never_takes_the_probes_down(tmp_path) -> None:
    """An adapter that cannot map the loop's arguments (the embedding taken as the label): each step
    still has its probe record, the training-batch failure is recorded in it, no step is an error
    and the hook does not stop after three."""
    with pytest.warns(RuntimeWarning, match="own batch cannot be measured"):
        lines = _biggan_loop(tmp_path, ReadmeBigGANCall(4))
    steps = [x for x in lines if x["kind"] == "step"]
    assert len(steps) == 6 and not [x for x in lines if x["kind"] == "error"]
    assert all("train" not in s and s["train_error"] for s in steps)
    assert all(s["probe"]["n"] == 16 for s in steps)


def test_the_users_modules_copy_and_pickle_as_without_the_hook(tmp_path) -> None:
    """Nothing is attached to G or D: a deepcopy or a pickle of either, made while watching, holds
    no trace of ganrobust (StyleGAN's loop copies G for G_ema and pickles snapshots)."""
    G, D = nn.Sequential(nn.Linear(4, 2)), nn.Sequential(nn.Linear(2, 1))
    with ganrobust.watch(G, D, tmp_path / "run", n_probes=4):
        for module in (G, D):
            copied = copy.deepcopy(module)
            assert not copied._forward_pre_hooks and not copied._forward_hooks
            assert b"ganrobust" not in pickle.dumps(module)


def test_the_stylegan_adapter_finds_latents_at_the_mapping(loop) -> None:
    G, _ = loop.build(3)  # type: ignore[attr-defined]
    call = StyleGANCall(c_dim=3)
    assert call.latent_entries(G) == (G, G.mapping)
    z, c = torch.randn(2, 8), torch.eye(3)[:2]
    assert call.latents_of(G.mapping, (z, c), {})[0] is z
    assert StyleGANCall(c_dim=0).latents_of(G, (z, torch.zeros(2, 0)), {})[1] is None
