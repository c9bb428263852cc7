"""Conditional GANs end to end: a conditional DCGAN with a projection D trained here on the
labelled digits, through watch -> audit -> robust swap -> compare -> report, every metric per
(z, c) probe; the GanCall adapter's contract; bad conditions are one clean line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ganrobust.config import AuditConfig, TrainConfig
from ganrobust.measure.audit import audit_gan
from ganrobust.measure.replay import generate
from ganrobust.cli.main import cli
from ganrobust.config import WatchConfig
from ganrobust.gan_call import DEFAULT, GanCall, StyleGANCall, check_pair
from ganrobust.models import ConditionalDCGANGenerator, DCGANDiscriminator, DCGANGenerator, ProjectionDiscriminator
from ganrobust.robust import RobustDLoss
from ganrobust.runs import read_run
from ganrobust.scorer import Scorer
from ganrobust.train import train

pytest.importorskip("sklearn")

TINY = dict(data="digits", batch=32, nz=16, ngf=16, ndf=16, conditional=True, lr=5e-4)
AUDIT = AuditConfig(n_probes=40, batch=16, k_steps=2, pgd_iterations=8, efficiency_steps=2, min_norm_probes=8,
                    eps_grid=(2 / 255, 16 / 255))


def _run(root: Path, name: str, steps: int, **extra: object) -> Path:
    torch.set_num_threads(1)
    cfg = TrainConfig(steps=steps, seed=0, **{**TINY, **extra})  # type: ignore[arg-type]
    train(cfg, run_dir=root / name, watch_config=WatchConfig(every=10, snapshot_every=steps, n_probes=40))
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"standard": _run(tmp_path_factory.mktemp("cond"), "standard", 30)}


# -- the adapter -----------------------------------------------------------------------------

def test_default_call_draws_exactly_what_plain_randn_draws() -> None:
    z, c = DEFAULT.sample(5, (4, 1, 1), torch.Generator().manual_seed(3))
    assert c is None and torch.equal(z, torch.randn((5, 4, 1, 1), generator=torch.Generator().manual_seed(3)))


def test_labels_are_drawn_from_the_seeded_generator_and_reproducible() -> None:
    call = GanCall(num_classes=7)
    a = call.sample(300, (4,), torch.Generator().manual_seed(1))
    b = call.sample(300, (4,), torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[1].shape == (300,) and set(a[1].tolist()) == set(range(7))


def test_stylegan_conditions_are_one_hot_or_none() -> None:
    """c_dim = 0 is unconditional everywhere: no condition is drawn or stored, and G and D still
    get the (N, 0) condition StyleGAN's networks take."""
    call = StyleGANCall(c_dim=0)
    _, c = call.sample(3, (8,), torch.Generator().manual_seed(0))
    assert c is None and not call.conditional and call.binds
    seen = []
    call.score_input(lambda x, c: seen.append(c.shape), torch.zeros(3, 1), None)
    assert seen == [(3, 0)]
    _, c = StyleGANCall(c_dim=4).sample(6, (8,), torch.Generator().manual_seed(0))
    assert c is not None and c.shape == (6, 4) and torch.equal(c.sum(1), torch.ones(6))


def test_a_conditioned_scorer_scores_each_row_with_its_own_condition() -> None:
    torch.manual_seed(0)
    D = ProjectionDiscriminator(ndf=8, nc=1, image_size=32, num_classes=3).eval()
    x = torch.rand(6, 1, 32, 32) * 2 - 1
    c = torch.tensor([0, 1, 2, 2, 1, 0])
    scorer = Scorer(D).conditioned(c)
    with torch.no_grad():
        assert torch.allclose(scorer(x), D(x, c))
        idx = torch.tensor([4, 1])
        assert torch.allclose(scorer.rows(idx)(x[idx]), D(x[idx], c[idx]))
    with pytest.raises(ValueError, match="one condition per scored sample"):
        scorer(x[:2])


def test_attacks_that_drop_finished_rows_keep_each_rows_condition() -> None:
    """PGD with early stopping scores ever smaller subsets: the scores it reports must be those of
    D(x_adv[i], c[i]) — with the wrong rows' conditions they would not match."""
    from ganrobust.attacks.projected_gradient_descent import pgd
    from ganrobust.conventions import Direction, Norm

    torch.manual_seed(1)
    D = ProjectionDiscriminator(ndf=8, nc=1, image_size=32, num_classes=4).eval()
    x = torch.rand(16, 1, 32, 32) * 2 - 1
    c = torch.arange(16) % 4
    scorer = Scorer(D).conditioned(c)
    eps = torch.full((16,), 0.3)
    x_adv, _, crossed = pgd(scorer.frozen(), x, eps, norm=Norm.LINF, direction=Direction.FAKE_TO_REAL, steps=20,
                            rel_stepsize=0.1, random_start=False, early_stop=True,
                            generator=torch.Generator().manual_seed(0), active=D(x, c) < 0)
    with torch.no_grad():
        assert torch.equal(crossed, crossed & (D(x_adv, c) >= 0))


def test_robust_d_loss_passes_conditions_to_d() -> None:
    torch.manual_seed(0)
    D = ProjectionDiscriminator(ndf=8, nc=1, image_size=32, num_classes=3)
    real, fake = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    y = torch.tensor([0, 1, 2, 0])
    for method in ("pgd", "r1", "gp", "standard"):
        loss = RobustDLoss(method=method, steps=2)(D, real, fake, y, y)
        assert torch.isfinite(loss), method
    with pytest.raises(TypeError):
        RobustDLoss(method="standard")(D, real, fake)  # a conditional D without conditions


# -- watch -> audit -> robust swap -> compare -> report -----------------------------------------

def test_watch_stores_probe_conditions_and_per_class_rates(runs: dict[str, Path]) -> None:
    run = read_run(runs["standard"])
    probes = load_file(str(runs["standard"] / "probes.safetensors"))
    assert probes["c"].shape == (40,) and probes["z"].shape[0] == 40
    expected = GanCall(10).sample(40, (16, 1, 1), torch.Generator().manual_seed(0))[1]
    assert torch.equal(probes["c"], expected)  # drawn from the probe seed, z first then c
    assert run.manifest["gan_call"]["num_classes"] == 10
    step = run.steps[-1].raw
    rows = step["by_class"]
    assert [r["class"] for r in rows] == list(range(10)) and sum(r["n"] for r in rows) == 40
    assert sum(r["n_fake"] for r in rows) == step["probe"]["n_fake"]
    labels = run.samples(run.steps[-1].step)["label"]
    assert np.array_equal(labels, probes["c"].numpy())


def test_audit_of_the_conditional_checkpoint_is_per_z_c_probe(runs: dict[str, Path]) -> None:
    from ganrobust.runs.checkpoints import load_gan
    from ganrobust.data import load_dataset

    loaded = load_gan(runs["standard"])
    assert isinstance(loaded.G, ConditionalDCGANGenerator) and loaded.gan_call["num_classes"] == 10
    data = load_dataset("digits")
    report = audit_gan(loaded.G, loaded.D, scorer_options={"bn": "batch"}, latent_shape=loaded.latent_shape,
                       opt_state=loaded.optimizer_g, cfg=AUDIT, real=data.x[:40], real_labels=data.y[:40],
                       call=GanCall(10), robust_d_steps=2)
    assert report["gan_call"]["num_classes"] == 10
    assert sum(r["n"] for r in report["by_class"]) == AUDIT.n_probes
    assert sum(r["n_fake"] for r in report["by_class"]) == report["update"]["n_fake"]
    samples = report["samples"]
    for row in report["by_class"]:  # each class's rates against a count made here from the per-probe arrays
        fake = [i for i, c in enumerate(samples["label"]) if c == row["class"] and samples["fake"][i]]
        assert row["n_fake"] == len(fake)
        for key, field in (("flip_rate", "flip"), ("aar", "accidental")):
            hits = sum(bool(samples[field][i]) for i in fake)
            assert row[key]["n"] == len(fake) and (not fake or row[key]["value"] == pytest.approx(hits / len(fake)))
    assert report["robust_d"]["real_called_real"]["robust"]["n"] == 40
    assert {r["direction"] for r in report["robustness"]} == {"fake->real", "real->fake"}
    # the probes' samples are G(z, c) with the audit's (z, c): recomputed here
    z, c = GanCall(10).sample(AUDIT.n_probes, loaded.latent_shape, torch.Generator().manual_seed(AUDIT.seed))
    x = generate(loaded.G, z, AUDIT.g_bn, GanCall(10), c)
    s = Scorer(loaded.D, bn="batch").conditioned(c).score(x).numpy()
    assert np.allclose(report["samples"]["s"], s, atol=1e-5)
    assert np.array_equal(report["samples"]["label"], c.numpy())


def _digits_folder(root: Path, per_class: int = 4) -> Path:
    """The digits as PNG files in one sub-folder per class (8x8, upsampled by the loader)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for label in range(10):
        (root / f"digit_{label}").mkdir(parents=True)
        for i, idx in enumerate(np.flatnonzero(bunch.target == label)[:per_class]):
            Image.fromarray((bunch.images[idx] * 255 / 16).astype(np.uint8)).save(root / f"digit_{label}" / f"{i}.png")
    return root


# the path the issue names — watch, audit (through an image folder), robust swap, compare, report —
# runs in the default suite (about 8 s here) so that CI holds it; the 300-step run is marked slow
def test_cli_audit_compare_report_on_conditional_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    runs = {**runs, "pgd": _run(tmp_path, "pgd", 30, d_training="pgd", d_steps=2)}  # the robust swap
    runner = CliRunner()
    out = tmp_path / "audit"
    # labels from sub-folder names, through --data DIR; 10 classes x 150 images, read class-sorted (the
    # loader keeps 1000, 100 a class): the audit's 60 real samples must hold every class, not class 0 only
    folder = _digits_folder(tmp_path / "digits", per_class=150)
    result = runner.invoke(cli, ["audit", str(runs["standard"]), "--out", str(out), "--n-probes", "60",
                                 "--k-steps", "1", "--data", str(folder)])
    assert result.exit_code == 0, result.output
    assert "1000 images from" in result.output and "10 classes from sub-folders" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["real_samples"]["class_counts"] == [6] * 10 and report["real_samples"]["of"] == 1000
    assert report["robustness_summary"]["clean_accuracy"]["real->fake"]["n"] == 60
    assert report["gan_call"]["num_classes"] == 10 and len(report["by_class"]) == 10
    assert {r["direction"] for r in report["robustness"]} == {"fake->real", "real->fake"}
    assert "By class" in (out / "summary.md").read_text()
    result = runner.invoke(cli, ["compare", str(runs["standard"]), str(runs["pgd"]), "--out", str(tmp_path / "cmp"),
                                 "--robustness-samples", "8", "--quality-samples", "200", "--classifier-steps", "20"])
    assert result.exit_code == 0, result.output
    compared = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert all(p["robustness"]["fake->real"]["median_eps_star"] for r in compared["runs"] for p in r["points"])
    assert all(len(r["by_class"]) == 10 for r in compared["runs"])
    assert "By class (conditional runs" in (tmp_path / "cmp" / "summary.md").read_text()
    result = runner.invoke(cli, ["report", str(runs["pgd"]), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "By class" in (tmp_path / "rep" / "summary.md").read_text()


@pytest.mark.slow
def test_a_few_hundred_steps_of_conditional_training_end_to_end(tmp_path: Path) -> None:
    run = _run(tmp_path, "long", 300)
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(tmp_path / "a"), "--data", "digits",
                                      "--robust-d", "20"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert len(report["by_class"]) == 10 and report["robust_d"] is not None


# -- bad input: one line, exit 2 -------------------------------------------------------------

def _save_pair(tmp_path: Path, G: torch.nn.Module, D: torch.nn.Module) -> str:
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, tmp_path / "pair.pt")
    return str(tmp_path / "pair.pt")


@pytest.mark.parametrize("case", ["conditions for an unconditional D", "no condition for a conditional D",
                                  "labels beyond D's classes"])
def test_bad_conditions_are_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    torch.manual_seed(0)
    if case == "conditions for an unconditional D":
        path = _save_pair(tmp_path, DCGANGenerator(nz=8, ngf=8, nc=1, image_size=32),
                          DCGANDiscriminator(ndf=8, nc=1, image_size=32))
        args = [path, "--arch", "dcgan", "--num-classes", "10"]
        words = "drop --num-classes"
    else:
        G, D = ConditionalDCGANGenerator(nz=8, ngf=8, nc=1, num_classes=3), ProjectionDiscriminator(ndf=8, nc=1, num_classes=3)
        path = _save_pair(tmp_path, G, D)
        classes = ["ganrobust.models:ConditionalDCGANGenerator", "--generator-kwargs",
                   '{"nz": 8, "ngf": 8, "nc": 1, "num_classes": 3}', "--discriminator-class",
                   "ganrobust.models:ProjectionDiscriminator", "--discriminator-kwargs", '{"ndf": 8, "nc": 1, "num_classes": 3}']
        args = [path, "--generator-class", *classes]
        if case == "labels beyond D's classes":
            args += ["--num-classes", "7"]
            words = "check --num-classes"
        else:
            words = "pass --num-classes K"
    result = CliRunner().invoke(cli, ["audit", *args, "--out", str(tmp_path / "o"), "--n-probes", "8", "--k-steps", "1"])
    assert result.exit_code == 2, (case, result.output)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last and "Traceback" not in result.output, (case, result.output)


def test_conditions_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"expected class labels c of shape \(4,\)"):
        GanCall(3).check_condition(torch.zeros(4, 3, dtype=torch.long), 4)
    with pytest.raises(ValueError, match=r"expected StyleGAN conditions c of shape \(4, 2\)"):
        StyleGANCall(c_dim=2).check_condition(torch.zeros(4, 5), 4)
    with pytest.raises(ValueError, match="unconditional GAN"):
        DEFAULT.check_condition(torch.zeros(4, dtype=torch.long), 4)
    G, D = DCGANGenerator(nz=8, ngf=8, nc=1, image_size=32), DCGANDiscriminator(ndf=8, nc=1, image_size=32)
    with pytest.raises(ValueError, match="takes one input"):
        check_pair(G, D, GanCall(3), (8, 1, 1))


# -- AC-GAN: G(z, y), D(x) -> (validity, class logits) ----------------------------------------

class _ACGenerator(torch.nn.Module):
    def __init__(self, nz: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.nz = nz
        self.label_emb = torch.nn.Embedding(classes, nz)
        self.l1 = torch.nn.Linear(nz, 1 * 8 * 8)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.l1(self.label_emb(labels) * noise)).view(-1, 1, 8, 8)


class _ACDiscriminator(torch.nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = torch.nn.Linear(64, 16)
        self.adv_layer = torch.nn.Linear(16, 1)
        self.aux_layer = torch.nn.Linear(16, classes)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.nn.functional.leaky_relu(self.body(img.flatten(1)), 0.2)
        return self.adv_layer(h), self.aux_layer(h)


def test_acgan_conditional_g_with_an_unconditional_two_headed_d() -> None:
    torch.manual_seed(0)
    G, D = _ACGenerator(), _ACDiscriminator()
    call = GanCall(4, d_condition=False)
    check_pair(G, D, call, (8,))
    with pytest.raises(ValueError, match="takes one input"):
        check_pair(G, D, GanCall(4), (8,))  # a projection-style call would pass labels to D(x)
    cfg = AuditConfig(n_probes=16, batch=8, k_steps=1, pgd_iterations=4, efficiency_steps=2, min_norm_probes=4,
                      eps_grid=(8 / 255,))
    report = audit_gan(G, D, scorer_options={"head": 0}, latent_shape=(8,), cfg=cfg, call=call)
    z, c = call.sample(16, (8,), torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = D(G(z, c))[0].squeeze(1)
    assert np.allclose(report["samples"]["s"], expected.numpy(), atol=1e-6)
    assert len(report["by_class"]) == 4 and report["gan_call"]["d_condition"] is False
