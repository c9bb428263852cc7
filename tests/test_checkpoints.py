"""Every checkpoint format loads (written here by the tests), and every bad input is one clean line."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganrobust.runs.checkpoints import CheckpointError, load_gan
from ganrobust.cli.main import cli
from ganrobust.models import DCGANDiscriminator, DCGANGenerator


@pytest.fixture(scope="module")
def pair() -> tuple[DCGANGenerator, DCGANDiscriminator]:
    torch.manual_seed(0)
    return DCGANGenerator(nz=12, ngf=8, nc=3, image_size=32), DCGANDiscriminator(ndf=8, nc=3, image_size=32)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def _opt_state(G: torch.nn.Module) -> dict:
    opt = torch.optim.Adam(G.parameters(), 1e-3)
    G(torch.randn(2, 12)).mean().backward()
    opt.step()
    G.zero_grad(set_to_none=True)
    return opt.state_dict()


@pytest.mark.parametrize("g_key, d_key", [("G", "D"), ("generator", "discriminator"), ("netG", "netD")])
def test_dict_with_usual_keys_and_ddp_prefixes(tmp_path, pair, g_key, d_key) -> None:
    G, D = pair
    state = {g_key: {f"module.{k}": v for k, v in G.state_dict().items()}, d_key: D.state_dict(),
             "optimizer_G": _opt_state(copy.deepcopy(G)), "epoch": 3}
    torch.save(state, tmp_path / "ckpt.pt")
    loaded = load_gan(tmp_path / "ckpt.pt", arch="dcgan")
    assert _same(loaded.G, G) and _same(loaded.D, D)
    assert loaded.optimizer_g is not None and loaded.latent_shape == (12, 1, 1)


def test_lightning_checkpoint_with_prefixes_and_optimizer_states(tmp_path, pair) -> None:
    G, D = pair
    state_dict = {**{f"generator.{k}": v for k, v in G.state_dict().items()},
                  **{f"discriminator.{k}": v for k, v in D.state_dict().items()}}
    opt_d = torch.optim.Adam(D.parameters()).state_dict()
    torch.save({"state_dict": state_dict, "optimizer_states": [opt_d, _opt_state(copy.deepcopy(G))],
                "pytorch-lightning_version": "2.4.0", "epoch": 1}, tmp_path / "last.ckpt")
    loaded = load_gan(tmp_path / "last.ckpt")
    assert _same(loaded.G, G) and _same(loaded.D, D)
    assert loaded.optimizer_g is not None
    assert len(loaded.optimizer_g["param_groups"][0]["params"]) == len(list(G.parameters()))


def test_pytorch_examples_pair_of_files(tmp_path, pair) -> None:
    G, D = pair
    D_sig = DCGANDiscriminator(ndf=8, nc=3, image_size=32, sigmoid=True)
    D_sig.load_state_dict(D.state_dict())
    torch.save(G.state_dict(), tmp_path / "netG_epoch_24.pth")
    torch.save(D_sig.state_dict(), tmp_path / "netD_epoch_24.pth")
    loaded = load_gan(generator=tmp_path / "netG_epoch_24.pth", discriminator=tmp_path / "netD_epoch_24.pth", arch="dcgan")
    assert _same(loaded.G, G) and loaded.score["kind"] == "prob"
    assert isinstance(loaded.D.main[-1], torch.nn.Sigmoid)


def test_torchscript_archives(tmp_path, pair) -> None:
    G, D = pair
    torch.jit.script(G.eval()).save(str(tmp_path / "g.pt"))
    torch.jit.script(D.eval()).save(str(tmp_path / "d.pt"))
    loaded = load_gan(generator=tmp_path / "g.pt", discriminator=tmp_path / "d.pt", latent_shape=(12, 1, 1))
    z = torch.randn(3, 12, 1, 1)
    assert torch.allclose(loaded.G(z), G.eval()(z))


def test_import_path_with_json_kwargs(tmp_path, pair) -> None:
    G, D = pair
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, tmp_path / "c.pt")
    loaded = load_gan(tmp_path / "c.pt", generator_class="ganrobust.models:DCGANGenerator",
                      generator_kwargs='{"nz": 12, "ngf": 8, "image_size": 32}',
                      discriminator_class="ganrobust.models:DCGANDiscriminator",
                      discriminator_kwargs={"ndf": 8, "image_size": 32})
    assert _same(loaded.G, G)


def test_pickled_whole_modules_need_trust(tmp_path, pair) -> None:
    G, D = pair
    torch.save({"G": G, "D": D}, tmp_path / "modules.pt")
    with pytest.raises(CheckpointError, match="trust=True"):
        load_gan(tmp_path / "modules.pt")
    assert _same(load_gan(tmp_path / "modules.pt", trust=True).G, G)


def _bad_cases(tmp_path: Path, G, D) -> dict[str, tuple[list[str], str]]:
    good = tmp_path / "good.pt"
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, good)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    torch.save({"weights": G.state_dict()}, tmp_path / "wrongkeys.pt")
    small = DCGANDiscriminator(ndf=4, nc=3, image_size=32)
    torch.save({"G": G.state_dict(), "D": {**D.state_dict(), "main.2.weight": small.main[2].weight}}, tmp_path / "shape.pt")
    nan_d = {k: v.clone() for k, v in D.state_dict().items()}
    nan_d["main.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save({"G": G.state_dict(), "D": nan_d}, tmp_path / "nan.pt")
    return {
        "missing": ([str(tmp_path / "nope.pt")], "does not exist"),
        "truncated": ([str(tmp_path / "truncated.pt")], "not a readable PyTorch checkpoint"),
        "random bytes": ([str(tmp_path / "random.pt")], "not a readable PyTorch checkpoint"),
        "wrong keys": ([str(tmp_path / "wrongkeys.pt")], "no generator/discriminator found"),
        "shape mismatch": ([str(good.parent / "shape.pt"), "--arch", "dcgan"], "do not fit"),
        "unimportable": ([str(good), "--generator-class", "nosuchpkg.mod:G", "--discriminator-class", "x:y"], "cannot import"),
        "nan weights": ([str(tmp_path / "nan.pt")], "NaN or inf"),
        "bad kwargs": ([str(good), "--generator-class", "ganrobust.models:DCGANGenerator", "--generator-kwargs", "{nope",
                        "--discriminator-class", "ganrobust.models:DCGANDiscriminator"], "JSON object"),
        "impossible budget": ([str(good), "--eps", "0"], "eps"),
    }


def test_every_bad_input_is_one_line_and_exit_2(tmp_path, pair) -> None:
    G, D = pair
    runner = CliRunner()
    for name, (args, match) in _bad_cases(tmp_path, G, D).items():
        result = runner.invoke(cli, ["audit", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, (name, result.output, result.exception)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("error: ") and match in lines[-1], (name, result.output)
        assert "Traceback" not in result.output, name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.integers(0, 10**9), max_size=8))
def test_mangled_checkpoints_only_ever_raise_clean_errors(tmp_path_factory, pair, cut, flips) -> None:
    G, D = pair
    path = tmp_path_factory.mktemp("fuzz") / "c.pt"
    buf = tmp_path_factory.mktemp("src") / "good.pt"
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, buf)
    data = bytearray(buf.read_bytes())
    data = data[: max(1, int(len(data) * cut))] if cut < 1 else data
    for f in flips:
        data[f % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        loaded = load_gan(path, arch="dcgan")
    except CheckpointError:
        return
    assert isinstance(loaded.G, torch.nn.Module)  # a harmless mangling (e.g. in zip padding) may still load


# -- the layouts people keep (issue 12): each built here --------------------------------------

def _tutorial(G, D) -> dict:
    return {"netG_state_dict": G.state_dict(), "netD_state_dict": D.state_dict(),
            "optimizerG_state_dict": _opt_state(copy.deepcopy(G)),
            "optimizerD_state_dict": torch.optim.Adam(D.parameters()).state_dict(), "epoch": 5}


@pytest.mark.parametrize("layout", ["tutorial", "generator_state_dict", "nested state_dict", "nested model_state_dict",
                                    "nested model", "nested ema"])
def test_dict_layouts_with_state_dict_suffixes_and_nestings(tmp_path, pair, layout) -> None:
    G, D = pair
    obj = {
        "tutorial": _tutorial(G, D),
        "generator_state_dict": {"generator_state_dict": G.state_dict(), "discriminator_state_dict": D.state_dict(),
                                 "optimizer_G_state_dict": _opt_state(copy.deepcopy(G))},
        "nested state_dict": {"state_dict": {"G": G.state_dict(), "D": D.state_dict()},
                              "optimizer_G": _opt_state(copy.deepcopy(G))},
        "nested model_state_dict": {"model_state_dict": {"netG": G.state_dict(), "netD": D.state_dict()},
                                    "optimizer_state_dict": {"optG": _opt_state(copy.deepcopy(G))}, "step": 7},
        "nested model": {"model": _tutorial(G, D)},
        "nested ema": {"ema": {"generator": G.state_dict(), "discriminator": D.state_dict()}, "iteration": 3,
                       "opt_g": _opt_state(copy.deepcopy(G))},
    }[layout]
    torch.save(obj, tmp_path / "ckpt.pt")
    loaded = load_gan(tmp_path / "ckpt.pt")
    assert _same(loaded.G, G) and _same(loaded.D, D), layout
    if layout != "nested model_state_dict":
        assert loaded.optimizer_g is not None, layout


def test_no_pair_found_lists_the_keys_found(tmp_path, pair) -> None:
    G, D = pair
    torch.save({"model": {"gen_weights": G.state_dict(), "crit_weights": D.state_dict()}, "epoch": 3}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"found keys: epoch, model; under 'model': crit_weights, gen_weights"):
        load_gan(tmp_path / "c.pt")


def _opt_of(G) -> dict:
    return _opt_state(copy.deepcopy(G))


@pytest.mark.parametrize("family, g_name, d_name, wrap", [
    ("pytorch-gan", "generator_5.pth", "discriminator_5.pth", "bare"),
    ("plain", "G.pth", "D.pth", "bare"),
    ("pytorch/examples", "netG_epoch_5.pth", "netD_epoch_5.pth", "bare"),
    ("studiogan", "model=G-best-weights-step=200.pth", "model=D-best-weights-step=200.pth", "studiogan"),
    ("mimicry", "checkpoints/netG/netG_100000_steps.pth", "checkpoints/netD/netD_100000_steps.pth", "mimicry"),
])
@pytest.mark.parametrize("given", ["generator file", "discriminator file"])
def test_one_file_per_network_is_paired_by_name(tmp_path, pair, family, g_name, d_name, wrap, given) -> None:
    G, D = pair
    if wrap == "bare":
        g_obj, d_obj = G.state_dict(), D.state_dict()
    elif wrap == "studiogan":  # StudioGAN's misc.save_checkpoint layout
        g_obj = {"state_dict": G.state_dict(), "optimizer": _opt_of(G), "seed": 0, "run_name": "r", "step": 200,
                 "epoch": 1, "topk": 10, "aa_p": 0.0, "best_step": 200, "best_fid": 10.0, "best_fid_ckpt": "x"}
        d_obj = {"state_dict": D.state_dict(), "optimizer": torch.optim.Adam(D.parameters()).state_dict(), "seed": 0,
                 "run_name": "r", "step": 200, "epoch": 1}
    else:  # torch-mimicry's BaseModel.save_checkpoint
        g_obj = {"model_state_dict": G.state_dict(), "optimizer_state_dict": _opt_of(G), "global_step": 100000}
        d_obj = {"model_state_dict": D.state_dict(),
                 "optimizer_state_dict": torch.optim.Adam(D.parameters()).state_dict(), "global_step": 100000}
    for name, obj in ((g_name, g_obj), (d_name, d_obj)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, tmp_path / name)
    loaded = load_gan(tmp_path / (g_name if given == "generator file" else d_name))
    assert _same(loaded.G, G) and _same(loaded.D, D), family
    assert any("paired" in note for note in loaded.notes)
    assert (loaded.optimizer_g is not None) == (wrap != "bare"), family


def test_one_network_without_partner_is_one_clean_line(tmp_path, pair) -> None:
    G, _ = pair
    torch.save(G.state_dict(), tmp_path / "netG_epoch_5.pth")
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "netG_epoch_5.pth"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith("error: ")
    assert "partner" in result.output and "--generator FILE --discriminator FILE" in result.output
