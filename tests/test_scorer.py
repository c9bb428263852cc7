"""A scorer never changes the module: modes, grads, buffers and the global RNG (each tested)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganrobust import Scorer
from ganrobust.attacks import PGD, MinNorm
from ganrobust.models import DCGANDiscriminator, MLPDiscriminator


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()} | {
        f"buffer:{k}": v.clone() for k, v in module.named_buffers()}


def _touch_everything(scorer: Scorer, x: torch.Tensor) -> None:
    scorer(x)
    scorer.margin_grad(x, "fake->real")
    PGD(norm="linf", steps=3)(scorer, x, eps=0.05, seed=1)
    MinNorm(norm="l2", bisection_steps=2)(scorer, x)


@pytest.mark.parametrize("bn", ["eval", "batch"])
def test_module_unchanged_by_scoring_and_attacks(dcgan_d: nn.Module, images: torch.Tensor, bn: str) -> None:
    dcgan_d.train()
    dcgan_d.main[1].eval()  # a mixed-mode module: every flag must come back as it was
    modes = {name: m.training for name, m in dcgan_d.named_modules()}
    before = _state(dcgan_d)
    rng = torch.get_rng_state()
    _touch_everything(Scorer(dcgan_d, bn=bn), images[:16])
    assert {name: m.training for name, m in dcgan_d.named_modules()} == modes
    after = _state(dcgan_d)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert all(p.grad is None for p in dcgan_d.parameters())
    assert torch.equal(rng, torch.get_rng_state())


def test_existing_grads_are_left_exactly(dcgan_d: nn.Module, images: torch.Tensor) -> None:
    dcgan_d(images[:4]).sum().backward()
    grads = [p.grad.clone() for p in dcgan_d.parameters()]
    _touch_everything(Scorer(dcgan_d), images[:8])
    for g, p in zip(grads, dcgan_d.parameters()):
        assert torch.equal(g, p.grad)


def test_spectral_norm_vector_not_advanced(sn_mlp: nn.Module) -> None:
    sn_mlp.train()  # in train mode a forward would run a power iteration
    before = _state(sn_mlp)
    _touch_everything(Scorer(sn_mlp, bounds=(-3, 3)), torch.randn(8, 8).clamp(-3, 3))
    for key, value in _state(sn_mlp).items():
        assert torch.equal(before[key], value), key


def test_batch_mode_uses_batch_statistics_without_updating(dcgan_d: nn.Module, images: torch.Tensor) -> None:
    x = images[:16]
    expected = torch.func.functional_call(  # train-mode forward on copies of the buffers
        dcgan_d.train(), {k: v.clone() for k, v in dcgan_d.state_dict().items()}, (x,))
    dcgan_d.eval()
    before = _state(dcgan_d)
    got = Scorer(dcgan_d, bn="batch").score(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, Scorer(dcgan_d).score(x), atol=1e-3)
    for key, value in _state(dcgan_d).items():
        assert torch.equal(before[key], value), key


def test_prob_output_is_stripped_to_the_exact_logit(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    with_sigmoid = DCGANDiscriminator(ndf=8, image_size=32, sigmoid=True)
    plain = DCGANDiscriminator(ndf=8, image_size=32)
    plain.load_state_dict(with_sigmoid.state_dict())
    scorer = Scorer(with_sigmoid, kind="prob")
    assert torch.equal(scorer.score(images[:8]), Scorer(plain).score(images[:8]))
    assert scorer.prob_conversion == "stripped"


def test_functional_sigmoid_falls_back_to_clamped_logit() -> None:
    class D(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.lin(x)).squeeze(1)

    d = D()
    x = torch.rand(5, 4) * 2 - 1
    scorer = Scorer(d, kind="prob")
    assert torch.allclose(scorer.score(x), d.lin(x).squeeze(1), atol=1e-4)
    assert scorer.prob_conversion == "clamped"


def test_critic_needs_calibration_and_calibrates_to_the_midpoint() -> None:
    d = MLPDiscriminator(dim=3, hidden=8)
    scorer = Scorer(d, kind="critic", bounds=(-5, 5))
    real, fake = torch.randn(20, 3), torch.randn(20, 3) + 1
    with pytest.raises(ValueError, match="calibrate"):
        _ = scorer.tau
    calibrated = scorer.calibrate(real, fake)
    expected = 0.5 * (calibrated.score(real).mean() + calibrated.score(fake).mean())
    assert calibrated.tau == pytest.approx(expected.item())


def test_head_selects_an_output_of_a_multi_output_d() -> None:
    class ACD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(6, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.body(x)
            return h[:, 0], h[:, 1:]

    d, x = ACD(), torch.rand(3, 6)
    with pytest.raises(ValueError, match="head="):
        Scorer(d).score(x)
    assert torch.equal(Scorer(d, head=0).score(x), d(x)[0].detach())
    assert torch.equal(Scorer(d, head=lambda out: out[1][:, 2]).score(x), d(x)[1][:, 2].detach())


def test_patch_outputs_are_averaged_per_sample() -> None:
    conv = nn.Conv2d(3, 1, 3)
    x = torch.rand(4, 3, 6, 6)
    scorer = Scorer(conv, bounds=(0, 1))
    assert torch.allclose(scorer.score(x), conv(x).flatten(1).mean(1).detach())
    assert scorer.outputs_per_sample == 16


def test_ddp_style_wrapper_is_unwrapped() -> None:
    class Wrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    inner = MLPDiscriminator(dim=2, hidden=4)
    assert Scorer(Wrapper(inner)).module is inner


def test_nan_scores_are_a_clean_error() -> None:
    d = MLPDiscriminator(dim=2, hidden=4)
    with torch.no_grad():
        d.net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf scores"):
        Scorer(d).score(torch.rand(3, 2))


def test_wrong_output_count_is_a_clean_error() -> None:
    class Pooled(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean().reshape(1)

    with pytest.raises(ValueError, match="expected the discriminator output"):
        Scorer(Pooled()).score(torch.rand(4, 3))


def test_vocabulary_errors_list_the_choices() -> None:
    with pytest.raises(ValueError, match="'logit', 'prob', 'critic'"):
        Scorer(nn.Linear(2, 1), kind="probability")
    with pytest.raises(ValueError, match="lo < hi"):
        Scorer(nn.Linear(2, 1), bounds=(1, 1))


def test_stochastic_forward_keeps_global_rng(noisy_d) -> None:
    d, x = noisy_d, torch.rand(8, 4)
    rng = torch.get_rng_state()
    Scorer(d).score(x)
    assert torch.equal(rng, torch.get_rng_state())


def test_a_critics_threshold_is_set_in_one_place_and_only_for_a_critic_without_one() -> None:
    """``with_threshold`` (every measurement's calibration): the midpoint of the mean real and fake
    scores for a critic without tau; a given tau, or a logit D, untouched; no real samples: one error."""
    from ganrobust.errors import InputError
    from ganrobust.scorer import with_threshold

    lin = nn.Linear(3, 1)
    real, fake = torch.randn(16, 3) + 1, torch.randn(16, 3) - 1
    critic = Scorer(lin, kind="critic")
    got = with_threshold(critic, real, fake, tau_given=False)
    with torch.no_grad():
        expected = 0.5 * (lin(real).mean() + lin(fake).mean()).item()
    assert got.tau == pytest.approx(expected, rel=1e-5, abs=1e-6)
    logit = Scorer(lin)
    assert with_threshold(logit, real, fake, tau_given=False) is logit
    fixed = Scorer(lin, kind="critic", tau=0.25)
    assert with_threshold(fixed, real, fake, tau_given=True) is fixed
    with pytest.raises(InputError) as err:
        with_threshold(critic, None, fake, tau_given=False)
    assert err.value.params == ("real",)
