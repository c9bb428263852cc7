"""GAN families as plugins (ganrobust.families): each codebase's files are recognised by its own
module, which builds its networks, names its adapter and its own generator update. Stand-ins
written here reproduce each trait of the real codebases (never their code): a StudioGAN-style
constructor that takes config objects and a config loader, a BigGAN-PyTorch-style run with its
config in ``state_dict.pth`` and G called on the shared class embedding, a torch-mimicry-style
G carrying its ``loss_type``, a PyTorch-GAN ``models.py`` in the working directory, and an
AC-GAN-style D whose validity head ends in ``nn.Sigmoid``."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
import torch
from click.testing import CliRunner

from ganrobust import families
from ganrobust.cli.main import cli
from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC
from ganrobust.runs.checkpoints import load_gan

FAST = ["--n-probes", "16", "--k-steps", "1", "--robust-d", "0"]

# -- stand-ins: small networks with each codebase's calling convention --------------------------------

STUDIO_CONFIG = textwrap.dedent('''
    import json, types


    class Configurations:
        """Like StudioGAN's: the YAML's sections become attribute objects; modules are chosen by name."""

        def __init__(self, cfg_file):
            with open(cfg_file) as f:
                raw = json.load(f)  # the stand-in's "YAML" is JSON (a YAML subset)
            for section in ("DATA", "MODEL", "LOSS", "OPTIMIZATION", "STYLEGAN", "RUN", "MODULES"):
                setattr(self, section, types.SimpleNamespace(**raw.get(section, {})))
            import torch.nn as nn
            self.MODULES.g_linear = nn.Linear
''')
STUDIO_MODEL = textwrap.dedent('''
    import torch
    from torch import nn


    class Generator(nn.Module):
        def __init__(self, z_dim, img_size, num_classes, MODULES, MODEL):  # config objects, as StudioGAN's
            super().__init__()
            self.z_dim, self.img_size = z_dim, img_size
            self.embed = nn.Embedding(num_classes, z_dim)
            self.linear = MODULES.g_linear(z_dim, 3 * img_size * img_size)

        def forward(self, z, label, shared_label=None, eval=False):
            h = self.linear(z + self.embed(label))
            return torch.tanh(h).view(-1, 3, self.img_size, self.img_size)


    class Discriminator(nn.Module):
        def __init__(self, img_size, num_classes, MODULES, MODEL):
            super().__init__()
            self.linear = nn.Linear(3 * img_size * img_size, 1)
            self.embed = nn.Embedding(num_classes, 3 * img_size * img_size)

        def forward(self, x, label, eval=False, adc_fake=False):
            h = x.flatten(1)
            return {"adv_output": self.linear(h).squeeze(1) + (self.embed(label) * h).sum(1) * 0.01, "h": h}


    def load_generator_discriminator(DATA, OPTIMIZATION, MODEL, STYLEGAN, MODULES, RUN, device, logger):
        Gen = Generator(MODEL.z_dim, DATA.img_size, DATA.num_classes, MODULES, MODEL)
        Dis = Discriminator(DATA.img_size, DATA.num_classes, MODULES, MODEL)
        return Gen, None, None, Dis, None, None, None, None
''')
BIGGAN = textwrap.dedent('''
    import torch
    from torch import nn


    class Generator(nn.Module):
        def __init__(self, dim_z=8, resolution=8, n_classes=4, shared_dim=6, skip_init=False, no_optim=False, **kwargs):
            super().__init__()
            self.dim_z, self.resolution = dim_z, resolution
            self.shared = nn.Embedding(n_classes, shared_dim)
            self.linear = nn.Linear(dim_z + shared_dim, 3 * resolution ** 2)

        def forward(self, z, y):  # y: the shared class embedding, as BigGAN-PyTorch's G(z, G.shared(y))
            return torch.tanh(self.linear(torch.cat([z, y], 1))).view(-1, 3, self.resolution, self.resolution)


    class Discriminator(nn.Module):
        def __init__(self, resolution=8, n_classes=4, skip_init=False, **kwargs):
            super().__init__()
            self.linear = nn.Linear(3 * resolution ** 2, 1)
            self.embed = nn.Embedding(n_classes, 3 * resolution ** 2)

        def forward(self, x, y=None):
            h = x.flatten(1)
            return self.linear(h) + (self.embed(y) * h).sum(1, keepdim=True) * 0.01
''')
PYTORCH_GAN = textwrap.dedent('''
    import torch
    from torch import nn


    class Generator(nn.Module):  # PyTorch-GAN's AC-GAN: G(noise, labels)
        def __init__(self, latent_dim=8, n_classes=3, img_size=8):
            super().__init__()
            self.img_size = img_size
            self.label_emb = nn.Embedding(n_classes, latent_dim)
            self.l1 = nn.Sequential(nn.Linear(latent_dim, 3 * img_size ** 2), nn.Tanh())

        def forward(self, noise, labels):
            return self.l1(torch.mul(self.label_emb(labels), noise)).view(-1, 3, self.img_size, self.img_size)


    class Discriminator(nn.Module):  # D(img) -> (validity, label); validity ends in nn.Sigmoid
        def __init__(self, n_classes=3, img_size=8):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3 * img_size ** 2, 16), nn.LeakyReLU(0.2))
            self.adv_layer = nn.Sequential(nn.Linear(16, 1), nn.Sigmoid())
            self.aux_layer = nn.Sequential(nn.Linear(16, n_classes), nn.Softmax(dim=1))

        def forward(self, img):
            out = self.body(img.flatten(1))
            return self.adv_layer(out), self.aux_layer(out)
''')
MIMICRY = textwrap.dedent('''
    import torch
    from torch import nn


    class SNGANGenerator(nn.Module):
        def __init__(self, nz=8, loss_type="hinge"):
            super().__init__()
            self.nz, self.loss_type = nz, loss_type
            self.linear = nn.Linear(nz, 3 * 64)

        def forward(self, x):
            return torch.tanh(self.linear(x)).view(-1, 3, 8, 8)


    class SNGANDiscriminator(nn.Module):
        def __init__(self, loss_type="hinge"):
            super().__init__()
            self.loss_type = loss_type
            self.linear = nn.Linear(3 * 64, 1)

        def forward(self, x):
            return self.linear(x.flatten(1))
''')


@pytest.fixture()
def code(tmp_path: Path) -> Iterator[Path]:
    """A folder put on sys.path for stand-in modules; every module imported from it is forgotten after."""
    folder = tmp_path / "code"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    before = set(sys.modules)
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            if getattr(sys.modules[name], "__file__", None) and str(folder) in str(sys.modules[name].__file__):
                del sys.modules[name]


def _audit(args: list[str], out: Path) -> dict:
    result = CliRunner().invoke(cli, ["audit", *args, "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


# -- the table ---------------------------------------------------------------------------------------

def test_every_family_has_one_module_a_name_and_its_update_and_generic_is_last() -> None:
    names = [f.name for f in families.FAMILIES]
    assert len(set(names)) == len(names) and names[-1] == "generic"
    assert {"ganrobust", "stylegan", "studiogan", "biggan", "mimicry", "pytorch-gan", "dcgan"} <= set(names)
    modules = {type(f).__module__ for f in families.FAMILIES}
    assert len(modules) == len(families.FAMILIES)  # one module per family
    assert families.BY_NAME["stylegan"].update.lr == pytest.approx(0.002)
    assert families.BY_NAME["stylegan"].update.betas == pytest.approx((0.0, 0.99 ** 0.8))
    assert families.BY_NAME["biggan"].update.g_loss == "hinge"


def test_adding_a_family_is_one_module_and_one_line_in_the_table(tmp_path, monkeypatch) -> None:
    from ganrobust.models import MLPDiscriminator, MLPGenerator

    class Tagged(Family):  # a codebase whose checkpoint says who wrote it
        name, update = "tagged", Update(g_loss="hinge", lr=1e-3, betas=(0.0, 0.9), why="the tagged codebase's")

        def recognises(self, found: Found) -> bool:
            return isinstance(found.obj, dict) and found.obj.get("written_by") == "tagged"

        def load(self, found: Found) -> LoadedGAN:
            return GENERIC.load(found)

    monkeypatch.setattr(families, "FAMILIES", (Tagged(), *families.FAMILIES))
    G, D = MLPGenerator(nz=2, hidden=8, dim=2, depth=1), MLPDiscriminator(dim=2, hidden=8, depth=1)
    torch.save({"written_by": "tagged", "G": G.state_dict(), "D": D.state_dict()}, tmp_path / "c.pt")
    loaded = load_gan(tmp_path / "c.pt")
    assert loaded.family == "tagged" and loaded.update.g_loss == "hinge"
    report = _audit([str(tmp_path / "c.pt")], tmp_path / "r")
    settings = report["source"]["settings"]
    assert report["source"]["family"] == "tagged"
    assert settings["g_loss"] == {"value": "hinge", "from": "family"}
    assert settings["g_lr"] == {"value": 1e-3, "from": "family"} and settings["g_betas"]["value"] == [0.0, 0.9]


# -- StudioGAN: constructors that take config objects ---------------------------------------------------

def _studiogan(tmp_path: Path, code: Path) -> Path:
    (code / "config.py").write_text(STUDIO_CONFIG)
    (code / "models").mkdir()
    (code / "models" / "__init__.py").write_text("")
    (code / "models" / "model.py").write_text(STUDIO_MODEL)
    (code / "configs" / "CIFAR10").mkdir(parents=True)
    (code / "configs" / "CIFAR10" / "SNGAN-tiny.yaml").write_text(json.dumps(
        {"DATA": {"img_size": 8, "num_classes": 3}, "MODEL": {"z_dim": 8}, "LOSS": {"adv_loss": "hinge"}}))
    model = importlib.import_module("models.model")
    torch.manual_seed(0)
    cfg = importlib.import_module("config").Configurations(str(code / "configs" / "CIFAR10" / "SNGAN-tiny.yaml"))
    G, _, _, D, *_ = model.load_generator_discriminator(cfg.DATA, cfg.OPTIMIZATION, cfg.MODEL, None, cfg.MODULES,
                                                         cfg.RUN, "cpu", None)
    ckpt = tmp_path / "checkpoints" / "CIFAR10-SNGAN-tiny-train-2026_01_01_00_00_00"  # framework names have dashes
    ckpt.mkdir(parents=True)
    opt = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    torch.save({"state_dict": G.state_dict(), "optimizer": opt.state_dict()}, ckpt / "model=G-current-weights-step=5.pth")
    torch.save({"state_dict": D.state_dict(), "optimizer": opt.state_dict(), "run_name": ckpt.name, "step": 5},
               ckpt / "model=D-current-weights-step=5.pth")
    return ckpt / "model=G-current-weights-step=5.pth"


def test_studiogan_is_built_from_its_run_config_through_its_own_loader(tmp_path, code) -> None:
    path = _studiogan(tmp_path, code)
    loaded = load_gan(path)
    assert loaded.family == "studiogan" and loaded.update.g_loss == "hinge" and loaded.latent_shape == (8,)
    assert type(loaded.G).__name__ == "Generator" and loaded.optimizer_g is not None
    assert any("SNGAN-tiny.yaml" in note for note in loaded.notes)
    report = _audit([str(path)], tmp_path / "r")
    assert report["source"]["settings"]["g_loss"] == {"value": "hinge", "from": "family"}
    assert report["source"]["settings"]["optimizer"]["from"] == "detected"


def test_studiogan_without_its_code_or_config_is_one_line(tmp_path, code) -> None:
    path = _studiogan(tmp_path, code)
    (code / "configs" / "CIFAR10" / "SNGAN-tiny.yaml").unlink()
    result = CliRunner().invoke(cli, ["audit", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--config" in result.output.strip().splitlines()[-1]


# -- BigGAN-PyTorch: its config in state_dict.pth, G on the shared embedding -----------------------------

def test_biggan_is_built_from_its_state_dict_config_and_called_on_the_shared_embedding(tmp_path, code) -> None:
    (code / "BigGAN.py").write_text(BIGGAN)
    nets = importlib.import_module("BigGAN")
    config = {"model": "BigGAN", "dim_z": 8, "resolution": 8, "n_classes": 4, "shared_dim": 6,
              "G_activation": torch.nn.ReLU(inplace=False)}  # BigGAN-PyTorch keeps modules in its config
    torch.manual_seed(0)
    G, D = nets.Generator(**config), nets.Discriminator(**config)
    run = tmp_path / "weights" / "run"
    run.mkdir(parents=True)
    torch.save(G.state_dict(), run / "G.pth")
    torch.save(D.state_dict(), run / "D.pth")
    torch.save(torch.optim.Adam(G.parameters(), 5e-5, betas=(0.0, 0.999)).state_dict(), run / "G_optim.pth")
    torch.save({"itr": 10, "epoch": 1, "config": config}, run / "state_dict.pth")
    loaded = load_gan(run / "G.pth", trust=True)
    assert loaded.family == "biggan" and type(loaded.call).__name__ == "BigGANCall" and loaded.call.classes == 4
    assert loaded.optimizer_g is not None and loaded.optimizer_g_class == "Adam" and loaded.latent_shape == (8,)
    report = _audit([str(run / "G.pth"), "--trust-checkpoint"], tmp_path / "r")
    assert report["source"]["settings"]["g_loss"] == {"value": "hinge", "from": "family"}
    assert "by_class" in report


# -- torch-mimicry: the model's own loss_type ----------------------------------------------------------

def test_mimicry_replays_with_the_models_own_loss(tmp_path, code) -> None:
    (code / "standin_mimicry.py").write_text(MIMICRY)
    nets = importlib.import_module("standin_mimicry")
    G, D = nets.SNGANGenerator(loss_type="wasserstein"), nets.SNGANDiscriminator()
    for name, net in (("netG", G), ("netD", D)):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        torch.save({"model_state_dict": net.state_dict(), "optimizer_state_dict": torch.optim.Adam(
            net.parameters()).state_dict(), "global_step": 5}, tmp_path / "checkpoints" / name / f"{name}_5_steps.pth")
    args = [str(tmp_path / "checkpoints" / "netG" / "netG_5_steps.pth"),
            "--generator-class", "standin_mimicry:SNGANGenerator", "--generator-kwargs", '{"loss_type": "wasserstein"}',
            "--discriminator-class", "standin_mimicry:SNGANDiscriminator"]
    report = _audit(args, tmp_path / "r")
    assert report["source"]["family"] == "mimicry"
    assert report["source"]["settings"]["g_loss"] == {"value": "wasserstein", "from": "family"}
    override = _audit([*args, "--g-loss", "ns"], tmp_path / "r2")  # the user's option still wins
    assert override["source"]["settings"]["g_loss"] == {"value": "ns", "from": "option"}


# -- PyTorch-GAN: models.py in the working directory; AC-GAN's Sigmoid validity head --------------------

def _pytorch_gan(folder: Path, bias: float) -> None:
    (folder / "models.py").write_text(PYTORCH_GAN)
    spec = importlib.util.spec_from_file_location("_standin_pytorch_gan", folder / "models.py")
    nets = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(nets)  # type: ignore[union-attr]
    torch.manual_seed(0)
    G, D = nets.Generator(), nets.Discriminator()
    with torch.no_grad():
        D.adv_layer[0].bias.fill_(bias)  # bias < 0: D rejects every sample, as a trained D rejects G's
    (folder / "saved_models").mkdir()
    torch.save(G.state_dict(), folder / "saved_models" / "generator_5.pth")
    torch.save(D.state_dict(), folder / "saved_models" / "discriminator_5.pth")


def test_class_paths_import_from_the_working_directory_and_acgan_sigmoid_head_is_detected(
        tmp_path, monkeypatch) -> None:
    """Run from the folder holding models.py, as a console script is (its import path does not hold the
    working directory); the AC-GAN's D(img) -> (validity, label) has a Sigmoid on validity only."""
    _pytorch_gan(tmp_path, bias=-4.0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p or ".") != str(tmp_path)])
    monkeypatch.delitem(sys.modules, "models", raising=False)
    report = _audit(["saved_models/generator_5.pth", "--generator-class", "models:Generator",
                     "--discriminator-class", "models:Discriminator", "--num-classes", "3", "--no-d-condition",
                     "--head", "0"], tmp_path / "r")
    sys.modules.pop("models", None)
    assert report["source"]["family"] == "pytorch-gan"
    assert report["update"]["n_fake"] == 16  # D rejects every probe; scored as logits of its probabilities
    assert report["source"]["settings"]["kind"] == {"value": "prob", "from": "detected"}
    assert report["source"]["settings"]["g_lr"] == {"value": 2e-4, "from": "family"}


STYLEGAN = textwrap.dedent('''
    import torch
    from torch import nn


    class Generator(nn.Module):
        def __init__(self, z_dim=8, c_dim=0, img_resolution=8, img_channels=3):
            super().__init__()
            self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, c_dim, img_resolution, img_channels
            self.synthesis = nn.Linear(z_dim, img_channels * img_resolution ** 2)

        def forward(self, z, c, **kwargs):
            return torch.tanh(self.synthesis(z)).view(-1, self.img_channels, self.img_resolution, self.img_resolution)


    class Discriminator(nn.Module):
        def __init__(self, c_dim=0, img_resolution=8, img_channels=3):
            super().__init__()
            self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
            self.out = nn.Linear(img_channels * img_resolution ** 2, 1)

        def forward(self, img, c, **kwargs):
            return self.out(img.flatten(1))
''')


def test_a_bare_file_name_in_the_working_directory_finds_its_partner(tmp_path, monkeypatch) -> None:
    """`ganrobust audit generator_0.pth` run from the folder holding it: '.' has no folder name to swap."""
    from ganrobust.models import MLPDiscriminator, MLPGenerator

    torch.save(MLPGenerator(nz=2, hidden=8, dim=2, depth=1).state_dict(), tmp_path / "generator_0.pth")
    torch.save(MLPDiscriminator(dim=2, hidden=8, depth=1).state_dict(), tmp_path / "discriminator_0.pth")
    monkeypatch.chdir(tmp_path)
    loaded = load_gan("generator_0.pth")
    assert loaded.family == "pytorch-gan" and any("paired generator_0.pth" in note for note in loaded.notes)


def test_stylegan_snapshot_replays_its_own_lazy_regularised_adam_unless_told(tmp_path, code) -> None:
    """StyleGAN2-ADA steps G with Adam lr 0.0025 and betas (0, 0.99) scaled by its lazy
    regularisation ratio 4/5: lr 0.002, betas (0, 0.99 ** 0.8); --g-lr/--g-betas override."""
    import pickle

    (code / "standin_stylegan_family.py").write_text(STYLEGAN)
    nets = importlib.import_module("standin_stylegan_family")
    with open(tmp_path / "network-snapshot-000000.pkl", "wb") as f:
        pickle.dump({"G": nets.Generator().eval().requires_grad_(False), "D": nets.Discriminator().eval(),
                     "G_ema": nets.Generator().eval()}, f)
    args = [str(tmp_path / "network-snapshot-000000.pkl"), "--trust-checkpoint"]
    settings = _audit(args, tmp_path / "r")["source"]["settings"]
    assert settings["g_lr"]["from"] == "family" and settings["g_lr"]["value"] == pytest.approx(0.002)
    assert settings["g_betas"]["from"] == "family"
    assert settings["g_betas"]["value"] == pytest.approx([0.0, 0.99 ** 0.8], abs=1e-12)
    assert settings["g_loss"] == {"value": "ns", "from": "family"}
    told = _audit([*args, "--g-lr", "0.0025", "--g-betas", "0,0.99"], tmp_path / "r2")["source"]["settings"]
    assert told["g_lr"] == {"value": 0.0025, "from": "option"} and told["g_betas"] == {"value": [0.0, 0.99],
                                                                                       "from": "option"}
