"""A run records how to build again what it watched — the GAN adapter and the networks, as import
paths with constructor arguments — and `audit`/`compare` rebuild them, or say in one line what to
import or pass. Also: StyleGAN's adapter scores and replays G's raw output (issue 18, item 7)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import ganrobust
from ganrobust.cli.main import cli
from ganrobust.config import AuditConfig
from ganrobust.gan_call import GanCall, StyleGANCall, gan_call_from_record
from ganrobust.measure.replay import replay_steps
from ganrobust.recipes import class_path, model_recipe
from ganrobust.runs import read_run
from ganrobust.runs.checkpoints import CheckpointError, load_gan
from ganrobust.scorer import Scorer

MODULE = "standin_user_code"
SOURCE = textwrap.dedent('''
    from dataclasses import dataclass

    import torch
    from torch import nn

    from ganrobust.gan_call import GanCall


    @dataclass(frozen=True)
    class ShiftedCall(GanCall):
        """A user's adapter with an argument of its own: G(z + shift)."""
        shift: float = 0.0

        def generate(self, G, z, c):
            return G(z + self.shift)


    class G(nn.Module):  # keeps no config: its arguments are passed to watch()
        def __init__(self, nz, out):
            super().__init__()
            self.net = nn.Linear(nz, out)

        def forward(self, z):
            return torch.tanh(self.net(z))


    class D(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.net = nn.Linear(dim, 1)

        def forward(self, x):
            return self.net(x).squeeze(1)
''')


@pytest.fixture()
def code(tmp_path: Path) -> Iterator[object]:
    import importlib

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{MODULE}.py").write_text(SOURCE)
    sys.path.insert(0, str(tmp_path / "code"))
    try:
        yield importlib.import_module(MODULE)
    finally:
        if str(tmp_path / "code") in sys.path:
            sys.path.remove(str(tmp_path / "code"))
        sys.modules.pop(MODULE, None)


def _watched(tmp_path: Path, code: object, **watch) -> Path:
    torch.manual_seed(0)
    G, D = code.G(4, 3), code.D(3)  # type: ignore[attr-defined]
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-2), torch.optim.Adam(D.parameters(), 1e-2)
    with ganrobust.watch(G, D, tmp_path / "run", every=2, n_probes=8, min_norm_every=0, efficiency_steps=1,
                         latent_shape=(4,), **watch):
        for _ in range(2):
            loss_d = F.softplus(-D(torch.randn(8, 3))).mean() + F.softplus(D(G(torch.randn(8, 4)).detach())).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(G(torch.randn(8, 4)))).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    return tmp_path / "run"


def test_a_custom_adapter_and_the_networks_are_rebuilt_from_the_run(tmp_path, code) -> None:
    run = _watched(tmp_path, code, call=code.ShiftedCall(shift=0.25),  # type: ignore[attr-defined]
                   generator_kwargs={"nz": 4, "out": 3}, discriminator_kwargs={"dim": 3})
    manifest = read_run(run).manifest
    assert manifest["gan_call"]["class"] == f"{MODULE}:ShiftedCall"
    assert manifest["gan_call"]["kwargs"] == {"num_classes": None, "d_condition": True, "shift": 0.25}
    assert manifest["models"]["generator"]["kwargs"] == {"nz": 4, "out": 3}
    loaded = load_gan(run)  # no option: the recorded classes and arguments
    assert type(loaded.G).__name__ == "G" and type(loaded.D).__name__ == "D"
    assert gan_call_from_record(loaded.gan_call) == code.ShiftedCall(shift=0.25)  # type: ignore[attr-defined]


def test_an_adapter_that_does_not_import_is_one_line_naming_it(tmp_path, code) -> None:
    run = _watched(tmp_path, code, call=code.ShiftedCall(shift=0.25),  # type: ignore[attr-defined]
                   generator_kwargs={"nz": 4, "out": 3}, discriminator_kwargs={"dim": 3})
    record = read_run(run).manifest["gan_call"]
    sys.path.remove(str(tmp_path / "code"))
    sys.modules.pop(MODULE)
    with pytest.raises(ValueError, match=f"GAN adapter {MODULE}:ShiftedCall does not import here.*gan_call="):
        gan_call_from_record(record)
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(tmp_path / "o")])
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 2 and last.startswith("error: ") and "Traceback" not in result.output
    assert MODULE in last and ("--gan-call" in last or "--generator-class" in last)


def test_networks_without_recorded_arguments_name_the_option(tmp_path, code) -> None:
    run = _watched(tmp_path, code)  # G keeps no config and watch() was not told its arguments
    assert read_run(run).manifest["models"]["generator"]["kwargs"] is None
    with pytest.raises(CheckpointError, match="recorded the generator's class .*:G but not its constructor "
                                              "arguments.*generator_kwargs="):
        load_gan(run)


def test_a_class_from_the_training_script_says_to_move_it(tmp_path) -> None:
    ref = {"class": "__main__:Generator", "kwargs": {}, "script": "train.py"}
    from ganrobust.runs.architectures import recorded_pair

    with pytest.raises(CheckpointError, match=r"Generator was defined in the training script \(train.py\).*"
                                              r"generator_class="):
        recorded_pair({"generator": ref, "discriminator": ref}, "run")


def test_class_paths_resolve_through_a_renaming_wrapper() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import standin_stylegan_loop as loop

        G = loop.build(0)[0]
        assert "<locals>" in type(G).__qualname__  # the wrapper is a local class ...
        assert class_path(type(G)) == "standin_stylegan_loop:Generator"  # ... that took the module's name
        recipe = model_recipe(G)
        assert recipe["kwargs"]["z_dim"] == 8 and recipe["kwargs_from"] == "its init_kwargs attribute"
        assert model_recipe(G, {"bad": object()})["kwargs"] is None  # not JSON: left out, with the reason
    finally:
        sys.path.remove(str(Path(__file__).parent))


def test_runs_before_recipes_rebuild_their_adapter_by_name() -> None:
    assert gan_call_from_record({"adapter": "GanCall", "num_classes": 10}) == GanCall(10)
    assert gan_call_from_record({"adapter": "StyleGANCall", "c_dim": 2}) == StyleGANCall(c_dim=2)
    assert gan_call_from_record(StyleGANCall(c_dim=3).record()) == StyleGANCall(c_dim=3)


# -- issue 18, item 7: StyleGAN's output is scored and replayed raw --------------------------
class Overshooting(nn.Module):
    """A StyleGAN-like G(z, c): linear synthesis, about a third of its pixels outside [-1, 1]."""

    z_dim, c_dim, img_resolution, img_channels = 6, 0, 2, 1

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(6, 4)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 2, 2)


class Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(img.flatten(1))


def test_stylegan_is_scored_and_replayed_on_its_raw_output() -> None:
    torch.manual_seed(0)
    G, D = Overshooting(), Critic()
    with torch.no_grad():
        G.net.weight.mul_(3.0)
    call = StyleGANCall(c_dim=0)
    z = torch.randn(32, 6)
    raw = G(z, torch.zeros(32, 0))
    assert (raw.abs() > 1).float().mean() > 0.1
    assert torch.equal(call.generate(G, z, None), raw)  # what D and the replay see
    assert call.export(raw).abs().max() <= 1  # what leaves the tool as images
    cfg = AuditConfig(g_lr=1e-2, g_betas=(0.0, 0.99))
    replayed = replay_steps(G, Scorer(D), None, "Adam", cfg, (6,), 1, z, call, None)[0]
    manual = Overshooting()
    manual.load_state_dict(G.state_dict())
    opt = torch.optim.Adam(manual.parameters(), lr=1e-2, betas=(0.0, 0.99))
    F.softplus(-D(manual(z, torch.zeros(32, 0)), None)).mean().backward()  # StyleGAN's Gmain, unclamped
    opt.step()
    for a, b in zip(replayed.parameters(), manual.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
