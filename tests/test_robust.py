"""The robust-D drop-in: budgets, state, gradients, and a measurably more robust D."""

from __future__ import annotations

import pytest
import torch

from ganrobust import Norm, Scorer
from ganrobust.attacks import MinNorm
from ganrobust.conventions import Direction
from ganrobust.data import eight_gaussians
from ganrobust.models import DCGANGenerator, MLPDiscriminator
from ganrobust.robust import RobustDLoss
from ganrobust.runs import read_run
from ganrobust.stats import median_ci
from ganrobust.config import TrainConfig
from ganrobust.train import train


@pytest.mark.parametrize("method, norm", [("pgd", "linf"), ("pgd", "l2"), ("fgsm-rs", "linf")])
def test_adversarial_inputs_stay_within_budget_and_bounds(dcgan_d, images, method, norm) -> None:
    loss = RobustDLoss(method=method, norm=norm, eps=0.03, steps=3)
    dcgan_d.train()
    stats = {k: v.clone() for k, v in dcgan_d.state_dict().items()}
    rng = torch.get_rng_state()
    for direction in Direction:
        x_adv = loss.perturbed(dcgan_d, images[:16], direction)
        assert x_adv.min() >= -1 and x_adv.max() <= 1
        assert (Norm(norm).of(x_adv - images[:16]) <= 0.03 * 2 * (1 + 1e-5) + 1e-6).all()
        assert not torch.equal(x_adv, images[:16])
    assert torch.equal(rng, torch.get_rng_state())  # the loop's own draws are unchanged
    for k, v in dcgan_d.state_dict().items():  # crafting moves no BatchNorm statistic
        assert torch.equal(stats[k], v), k
    assert dcgan_d.training and all(p.grad is None for p in dcgan_d.parameters())


@pytest.mark.parametrize("method", ["pgd", "fgsm-rs", "r1", "gp", "standard"])
def test_gradients_reach_d_only(dcgan_d, images, method) -> None:
    G = DCGANGenerator(nz=8, ngf=8, image_size=32)
    fake = G(torch.randn(8, 8))  # not detached by the caller
    loss = RobustDLoss(method=method, steps=2)(dcgan_d.train(), images[:8], fake)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in dcgan_d.parameters())


def test_mix_perturbs_only_that_share_of_the_batch(dcgan_d, images) -> None:
    x_adv = RobustDLoss(method="pgd", mix=0.25, steps=2).perturbed(dcgan_d.train(), images[:16], Direction.REAL_TO_FAKE)
    changed = (x_adv != images[:16]).flatten(1).any(1)
    assert changed[:4].all() and not changed[4:].any()


def test_a_short_robust_training_makes_d_measurably_more_robust() -> None:
    """Same data, seed and steps: the PGD-trained D needs larger perturbations to call real
    samples fake — the 95% intervals of the two medians do not overlap.

    D alone is trained, against fixed fake samples spread over the box: a whole GAN's
    trajectory is chaotic, and on another CPU (AVX-512 vs AVX2 kernels) its standard run once
    ended with the larger eps*; the loss is what this test is about, not the GAN's path."""
    data = eight_gaussians(2000, seed=0)
    g = torch.Generator().manual_seed(0)
    fake = (torch.rand(2000, 2, generator=g) * 2 - 1) * max(data.bounds)
    medians = {}
    for method in ("standard", "pgd"):
        torch.manual_seed(0)
        D = MLPDiscriminator(dim=2, hidden=128)
        opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
        loss = RobustDLoss(method=method, eps=0.05, bounds=data.bounds, seed=0)
        batches = torch.Generator().manual_seed(1)
        for _ in range(300):
            i, j = torch.randint(0, 2000, (2, 128), generator=batches)
            opt.zero_grad()
            loss(D, data.x[i], fake[j]).backward()
            opt.step()
        result = MinNorm(norm="linf", bisection_steps=5)(Scorer(D.eval(), bounds=data.bounds), data.x[:256],
                                                         direction="real->fake")
        medians[method] = median_ci(result.norms_fraction[result.attacked].numpy())
    assert medians["pgd"].ci_low > medians["standard"].ci_high, medians
    assert medians["pgd"].value > 1.5 * medians["standard"].value, medians


def test_trainer_records_the_d_training_and_watches_it(tmp_path) -> None:
    from ganrobust.config import WatchConfig

    train(TrainConfig(steps=4, batch=16, nz=8, ngf=8, ndf=8, n_data=64, d_training="fgsm-rs"),
          run_dir=tmp_path / "run", watch_config=WatchConfig(every=2, n_probes=8, min_norm_every=0))
    run = read_run(tmp_path / "run")
    assert run.manifest["train_config"]["d_training"] == "fgsm-rs" and len(run.steps) == 2


@pytest.mark.parametrize("kwargs, match", [({"method": "pgd2"}, "method"), ({"eps": 0}, "eps"),
                                           ({"perturb": "neither"}, "perturb"), ({"mix": 2}, "mix")])
def test_bad_settings_are_clear_errors(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        RobustDLoss(**kwargs)
