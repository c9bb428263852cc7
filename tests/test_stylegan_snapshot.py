"""A StyleGAN2-ADA/StyleGAN3-style snapshot, built here: a tiny network pair written in this test
with StyleGAN's calling convention (``G(z, c)``, ``D(img, c)``), attributes (``z_dim``, ``c_dim``,
``img_resolution``, ``img_channels``) and pickle layout (``network-snapshot-*.pkl`` holding ``G``,
``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``). It is a stand-in, not NVIDIA's code:
its module is written to a temporary directory that the test puts on ``sys.path``."""

from __future__ import annotations

import copy
import importlib
import json
import pickle
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
import torch
from click.testing import CliRunner

from ganrobust.runs.checkpoints import CheckpointError, load_gan
from ganrobust.cli.main import cli
from ganrobust.gan_call import StyleGANCall, gan_call_for

MODULE = "standin_stylegan_networks"
SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Generator(nn.Module):
        def __init__(self, z_dim=8, c_dim=0, w_dim=16, img_resolution=8, img_channels=3):
            super().__init__()
            self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
            self.img_resolution, self.img_channels = img_resolution, img_channels
            self.mapping = nn.Sequential(nn.Linear(z_dim, w_dim), nn.LeakyReLU(0.2))
            self.embed = nn.Linear(c_dim, w_dim) if c_dim else None
            self.synthesis = nn.Linear(w_dim, img_channels * img_resolution ** 2)

        def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
            w = self.mapping(z)
            if self.c_dim:
                w = w + self.embed(c)
            # like StyleGAN, not squashed into [-1, 1]: it overshoots a little
            img = 1.1 * torch.tanh(self.synthesis(w))
            return img.view(-1, self.img_channels, self.img_resolution, self.img_resolution)


    class Discriminator(nn.Module):
        def __init__(self, c_dim=0, img_resolution=8, img_channels=3, cmap_dim=8):
            super().__init__()
            self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
            self.conv = nn.Conv2d(img_channels, 8, 3, 1, 1)
            self.out = nn.Linear(8 * img_resolution ** 2, cmap_dim if c_dim else 1)
            self.mapping = nn.Linear(c_dim, cmap_dim) if c_dim else None
            self.cmap_dim = cmap_dim

        def forward(self, img, c, update_emas=False, **block_kwargs):
            x = self.out(torch.nn.functional.leaky_relu(self.conv(img), 0.2).flatten(1))
            if self.c_dim:  # StyleGAN's projection: (x * cmap).sum / sqrt(cmap_dim), shape (N, 1)
                x = (x * self.mapping(c)).sum(dim=1, keepdim=True) / self.cmap_dim ** 0.5
            return x


    class AugmentPipe(nn.Module):
        def __init__(self, p=0.0):
            super().__init__()
            self.register_buffer("p", torch.ones([]) * p)
            self.calls = 0

        def forward(self, images):
            self.calls += 1
            if float(self.p) <= 0:
                return images
            flip = (torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self.p).to(images.dtype)
            return flip * images.flip(3) + (1 - flip) * images
''')


@pytest.fixture()
def standin(tmp_path: Path) -> Iterator[object]:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{MODULE}.py").write_text(SOURCE)
    sys.path.insert(0, str(tmp_path / "code"))
    try:
        yield importlib.import_module(MODULE)
    finally:
        sys.path.remove(str(tmp_path / "code"))
        sys.modules.pop(MODULE, None)


def _snapshot(tmp_path: Path, nets: object, c_dim: int, p: float = 0.0) -> Path:
    torch.manual_seed(0)
    G = nets.Generator(c_dim=c_dim)  # type: ignore[attr-defined]
    D = nets.Discriminator(c_dim=c_dim)  # type: ignore[attr-defined]
    G_ema = copy.deepcopy(G)
    with torch.no_grad():
        for q in G_ema.parameters():
            q.mul_(0.5)  # differs from G: a test can tell which one was replayed
    snapshot = {"G": G, "D": D, "G_ema": G_ema, "augment_pipe": nets.AugmentPipe(p),  # type: ignore[attr-defined]
                "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "data.zip",
                                        "use_labels": bool(c_dim), "resolution": 8}}
    for value in snapshot.values():  # StyleGAN's training loop saves eval copies without gradients
        if isinstance(value, torch.nn.Module):
            value.eval().requires_grad_(False)
    path = tmp_path / "network-snapshot-000000.pkl"
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    return path


FAST = ["--n-probes", "16", "--k-steps", "1"]


@pytest.mark.parametrize("c_dim", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_stylegan_snapshot_loads_with_trust_and_replays_g_not_g_ema(tmp_path, standin, c_dim) -> None:
    path = _snapshot(tmp_path, standin, c_dim)
    loaded = load_gan(path, trust=True)
    assert loaded.source.startswith("StyleGAN") and loaded.latent_shape == (8,)
    assert loaded.stylegan["replayed"] == "G" and "not used" in loaded.stylegan["G_ema"]
    with open(path, "rb") as f:
        G = pickle.load(f)["G"]
    assert all(torch.equal(a, b) for a, b in zip(loaded.G.state_dict().values(), G.state_dict().values()))
    assert all(q.requires_grad for q in loaded.G.parameters())  # so the replayed step moves G
    call = gan_call_for(loaded.G, loaded.D)
    assert isinstance(call, StyleGANCall) and call.c_dim == c_dim
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["source"]["stylegan"]["replayed"] == "G"
    assert report["source"]["stylegan"]["augment"].startswith("not used")
    assert report["odena"]["param_space"]["update_size_theta"] > 0  # G's update was replayed, not a frozen G
    assert ("by_class" in report) == bool(c_dim)
    assert "replayed the update of G" in (out / "summary.md").read_text()


def test_d_augment_puts_the_augment_pipe_in_front_of_d_and_says_so(tmp_path, standin) -> None:
    path = _snapshot(tmp_path, standin, 0, p=0.0)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--d-augment", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["source"]["stylegan"]["augment"].startswith("used: D scores augment_pipe(x)")
    assert "augmentation: used" in (out / "summary.md").read_text()


def test_snapshot_without_trust_or_without_its_code_is_one_line(tmp_path, standin) -> None:
    path = _snapshot(tmp_path, standin, 0)
    with pytest.raises(CheckpointError, match="trust=True"):
        load_gan(path)
    sys.modules.pop(MODULE, None)
    sys.path.remove(str(tmp_path / "code"))
    try:
        result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--out", str(tmp_path / "o")])
    finally:
        sys.path.insert(0, str(tmp_path / "code"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"needs module '{MODULE}'" in last and "PYTHONPATH" in last


def test_d_augment_without_a_pipe_and_wrong_num_classes_are_one_line(tmp_path, standin) -> None:
    path = _snapshot(tmp_path, standin, 0)
    result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--num-classes", "5",
                                      "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 2 and "c_dim=0" in result.output.strip().splitlines()[-1]
    from ganrobust.models import DCGANDiscriminator, DCGANGenerator

    torch.save({"G": DCGANGenerator(nz=8, ngf=8, nc=1, image_size=32).state_dict(),
                "D": DCGANDiscriminator(ndf=8, nc=1, image_size=32).state_dict()}, tmp_path / "plain.pt")
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "plain.pt"), "--d-augment", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "augment_pipe" in result.output.strip().splitlines()[-1]


def test_watch_a_stylegan_style_loop_through_its_adapter(tmp_path, standin) -> None:
    import torch.nn.functional as F
    from safetensors.torch import load_file

    import ganrobust
    from ganrobust.runs import read_run

    torch.manual_seed(0)
    G, D = standin.Generator(c_dim=2), standin.Discriminator(c_dim=2)  # type: ignore[attr-defined]
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    with ganrobust.watch(G, D, tmp_path / "run", call=StyleGANCall(c_dim=2), every=2, n_probes=16, snapshot_every=4,
                         min_norm_every=0, efficiency_steps=1):
        for _ in range(4):
            z, c = torch.randn(8, 8), F.one_hot(torch.randint(0, 2, (8,)), 2).float()
            real = torch.rand(8, 3, 8, 8) * 2 - 1
            loss_d = F.softplus(-D(real, c)).mean() + F.softplus(D(G(z, c).detach(), c)).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(G(z, c), c)).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    run = read_run(tmp_path / "run")
    assert run.manifest["gan_call"]["adapter"] == "StyleGANCall" and [s.step for s in run.steps] == [2, 4]
    probes = load_file(str(tmp_path / "run" / "probes.safetensors"))
    assert probes["c"].shape == (16, 2) and torch.equal(probes["c"].sum(1), torch.ones(16))
    rows = run.steps[-1].raw["by_class"]
    assert len(rows) == 2 and sum(r["n"] for r in rows) == 16
    assert run.steps[-1].raw["train"]["n"] == 8  # the step's own (z, c) batch, seen by the forward hook


def test_an_unconditional_snapshot_audits_with_an_unlabelled_image_folder(tmp_path, standin) -> None:
    """c_dim = 0 is unconditional everywhere: real images need no labels (real->fake is measured)."""
    from PIL import Image

    path = _snapshot(tmp_path, standin, 0)
    folder = tmp_path / "images"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(20):
        pixels = (torch.rand(8, 8, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--d-augment", "--data", str(folder),
                                      "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert "real->fake" in {r["direction"] for r in report["robustness"]} and "by_class" not in report


def test_a_snapshot_whose_raw_output_overshoots_the_range_audits(tmp_path, standin) -> None:
    """StyleGAN's G overshoots [-1, 1] and D sees it raw: the audit attacks those samples without a
    box (StyleGANCall.raw_output) instead of stopping at 'outside the data bounds'."""
    path = _snapshot(tmp_path, standin, 0)
    with open(path, "rb") as f:
        snapshot = pickle.load(f)
    with torch.no_grad():
        snapshot["G"].synthesis.weight.mul_(50.0)  # saturates 1.1 * tanh: pixels near ±1.1
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    loaded = load_gan(path, trust=True)
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert loaded.G(z, torch.zeros(16, 0)).abs().max() > 1.05  # the trait: raw output outside the range
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["audit", str(path), "--trust-checkpoint", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["score"].get("box") is False
