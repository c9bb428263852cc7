"""One minimum-norm run gives the whole curve, and PGD at each grid point agrees with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrobust import Scorer
from ganrobust.attacks import PGD, MinNorm, robustness_curve

GRID = [0.5 / 255, 1 / 255, 2 / 255, 3 / 255, 4 / 255, 6 / 255, 8 / 255, 12 / 255]


def test_curve_is_exact_for_a_linear_discriminator(linear_d, central_x) -> None:
    scorer = Scorer(linear_d)
    s = scorer.score(central_x)
    exact = s.abs() / linear_d.w.norm(p=2)
    grid = np.quantile((exact / 2).numpy(), [0.1, 0.3, 0.5, 0.7, 0.9]) * 1.0001
    curve = robustness_curve(scorer, central_x, grid, norm="l2")
    attacked = s < 0
    expected = [(exact[attacked] <= e * 2).double().mean().item() for e in curve.eps]
    assert [r.value for r in curve.success] == pytest.approx(expected, abs=1e-9)


def _balanced(d: torch.nn.Module, x: torch.Tensor) -> Scorer:
    """tau at the median score: half the samples on each side, both directions testable."""
    scorer = Scorer(d)
    return scorer.with_tau(scorer.score(x).median().item())


def _grid(scorer: Scorer, x: torch.Tensor, norm: str, direction: str) -> list[float]:
    r = MinNorm(norm=norm, bisection_steps=4)(scorer, x, direction=direction)
    return torch.quantile(r.norms_fraction[r.attacked], torch.linspace(0.05, 0.95, 8)).tolist()


@pytest.mark.parametrize("direction", ["fake->real", "real->fake"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_curve_is_never_weaker_than_per_eps_pgd_by_more_than_2_points(dcgan_d, images, norm, direction) -> None:
    """The curve may be stronger than PGD-10 (DeepFool finds adversarials PGD misses); every
    sample it counts carries a verified adversarial of the counted norm. 192 samples, so
    that 2 points are ~4 samples on each side rather than less than one."""
    images = torch.cat([images, images.flip(-1)])
    scorer = _balanced(dcgan_d, images)
    grid = _grid(scorer, images, norm, direction)
    curve = robustness_curve(scorer, images, grid, norm=norm, direction=direction)
    per_eps = [PGD(norm=norm, steps=10)(scorer, images, eps=e, direction=direction).success_rate.value
               for e in grid]
    rates = [r.value for r in curve.success]
    assert min(a - b for a, b in zip(rates, per_eps)) >= -0.02 - 1e-9, (rates, per_eps)
    assert rates == sorted(rates) and rates[0] < 0.5 < rates[-1]
    counted = torch.isfinite(curve.eps_star) & ~curve.clean_crossed
    assert curve.direction.crossed(scorer.score(curve.x_adv), scorer.tau)[counted].all()
    realized = curve.norm.of(curve.x_adv - images)
    assert torch.allclose(realized[counted], curve.eps_star[counted])


def test_curve_rows_carry_both_units_and_intervals(dcgan_d, images) -> None:
    curve = robustness_curve(_balanced(dcgan_d, images), images, [1 / 255, 4 / 255], norm="linf",
                             direction="real->fake")
    row = curve.rows()[0]
    assert row["direction"] == "real->fake" and row["norm"] == "linf"
    assert row["eps_data"] == pytest.approx(2 / 255)
    assert row["ci_low"] <= row["success_rate"] <= row["ci_high"]
    assert row["n"] == int((~curve.clean_crossed).sum())
    assert curve.median_eps_star.n == row["n"]


@pytest.mark.parametrize("grid", [[], [0.0, 0.1], [-0.1], [float("nan")], [1.5]])
def test_bad_grids_are_clear_errors(dcgan_d, images, grid) -> None:
    with pytest.raises(ValueError, match="eps"):
        robustness_curve(Scorer(dcgan_d), images[:4], grid, norm="linf")


def test_curve_identical_under_a_seed(dcgan_d, images) -> None:
    a = robustness_curve(Scorer(dcgan_d), images, GRID, seed=3)
    b = robustness_curve(Scorer(dcgan_d), images, GRID, seed=3)
    assert torch.equal(a.eps_star, b.eps_star)
