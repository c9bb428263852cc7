"""Offline sample-quality measures: exact values on constructed samples, and agreement with SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganrobust.data import digits, eight_gaussians, ring_modes, shapes
from ganrobust.measure.quality import frechet_distance, frechet_estimate, image_quality, real_floor, ring_quality, train_feature_net
from ganrobust.stats import mover_difference, wilson


def test_ring_quality_counts_modes_and_high_quality_samples_exactly() -> None:
    modes = ring_modes()
    balanced = modes.repeat(50, 1)                                     # 400 samples, 50 per mode, on the centres
    q = ring_quality(balanced)
    assert q["modes_covered"] == 8 and q["high_quality"]["value"] == 1.0 and q["mode_kl"] == pytest.approx(0.0, abs=1e-12)
    collapsed = modes[:1].repeat(400, 1)
    q = ring_quality(collapsed)
    assert q["modes_covered"] == 1 and q["mode_kl"] == pytest.approx(math.log(8))
    far = torch.zeros(400, 2)                                          # the centre of the ring: no mode
    q = ring_quality(far)
    assert q["modes_covered"] == 0 and q["high_quality"]["value"] == 0.0 and math.isnan(q["mode_kl"])


def test_ring_quality_thresholds_are_three_sigma_and_the_pacgan_share() -> None:
    radial = ring_modes()[0] / 2.0                                     # unit vector towards mode 0
    inside, outside = ring_modes()[0] + 2.9 * 0.02 * radial, ring_modes()[0] + 3.1 * 0.02 * radial
    assert ring_quality(torch.stack([inside, outside]))["high_quality"]["value"] == 0.5
    # 2500 samples: a mode needs 20 high-quality ones (PacGAN), 19 do not count
    x = torch.cat([ring_modes()[1:2].repeat(2461, 1), ring_modes()[2:3].repeat(20, 1), ring_modes()[3:4].repeat(19, 1)])
    assert ring_quality(x)["modes_covered"] == 2
    assert ring_quality(eight_gaussians(2500, seed=3).x)["modes_covered"] == 8


def test_ring_quality_rejects_bad_samples() -> None:
    with pytest.raises(ValueError, match="2-D"):
        ring_quality(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        ring_quality(torch.full((10, 2), float("nan")))


def test_frechet_distance_is_exact_for_known_gaussians_and_agrees_with_scipy() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    # diagonal covariances: FD = ‖Δμ‖² + Σ (√a − √b)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(5 + 1 + 1, rel=1e-12)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    for dim in (2, 16, 64):
        x = rng.normal(size=(400, dim))
        y = rng.normal(size=(400, dim)) @ rng.normal(size=(dim, dim)) * 0.3 + 0.5
        m1, s1, m2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
        reference = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy_linalg.sqrtm(s1 @ s2).real)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-8)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m2, s2, m1, s1), rel=1e-10)


def test_frechet_interval_covers_the_true_distance_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(20):
        x, y = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)) + np.array([2.0, 0, 0, 0])
        est = frechet_estimate(x, y)
        covered += est.ci_low <= 4.0 <= est.ci_high
        assert est.ci_low <= est.value <= est.ci_high
    assert covered >= 16  # ~95% nominal; the finite-n bias is small at n=2000, d=4
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    assert frechet_estimate(x, y, seed=5) == frechet_estimate(x, y, seed=5)


def test_mover_difference_reproduces_newcombes_example() -> None:
    """Newcombe (1998), method 10: 56/70 − 48/80 = 0.2, 95% interval (0.0524, 0.3339)."""
    d = mover_difference(wilson(56, 70), wilson(48, 80))
    assert (d.value, round(d.ci_low, 4), round(d.ci_high, 4)) == (pytest.approx(0.2), 0.0524, 0.3339)


def test_feature_space_separates_real_from_degraded_images_and_leaves_the_rng() -> None:
    data = shapes(3000, seed=0)
    state = torch.get_rng_state()
    space = train_feature_net(data, steps=120, seed=0)
    assert torch.equal(state, torch.get_rng_state())
    assert space.accuracy.value > 0.9, space.accuracy
    n = 500
    floor = real_floor(space, n)
    blurred = torch.nn.functional.avg_pool2d(space.floor_set[:n], 3, 1, 1)
    flat = image_quality(space, space.floor_set[:n] * 0.3)
    assert floor.value < image_quality(space, blurred)["frechet"]["value"] < flat["frechet"]["value"]
    assert flat["frechet"]["ci_low"] > floor.ci_high
    again = train_feature_net(data, steps=120, seed=0)  # same seed, same feature space
    assert real_floor(again, n) == floor


def test_feature_space_needs_labelled_images() -> None:
    with pytest.raises(ValueError, match="image data"):
        train_feature_net(eight_gaussians(500))
    unlabelled = shapes(300)
    unlabelled.y = None
    with pytest.raises(ValueError, match="no labels"):
        train_feature_net(unlabelled)


def test_digits_feature_space_trains_offline() -> None:
    pytest.importorskip("sklearn")
    space = train_feature_net(digits(), steps=150, seed=0)
    assert space.classes == 10 and space.accuracy.value > 0.8 and space.max_samples == 449
