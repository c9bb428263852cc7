"""The real samples an audit, a critic's calibration or a comparison uses are a seeded draw, stratified
by label, never the first n: image folders and class-ordered arrays arrive sorted by class (issue 18,
item 3: with 10 classes × 150 images, ``real[:256]`` held classes [150, 106, 0, …, 0])."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganrobust.config import AuditConfig
from ganrobust.data import real_subset, subset_index
from ganrobust.measure.audit import audit_gan
from ganrobust.models import MLPGenerator

SORTED = torch.arange(1500) // 150  # 10 classes × 150, class-sorted as a folder reads them


def test_a_stratified_draw_gives_each_class_its_share() -> None:
    idx = subset_index(1500, 256, seed=0, labels=SORTED)
    counts = torch.bincount(SORTED[idx], minlength=10)
    assert counts.sum() == 256 and len(set(idx.tolist())) == 256
    assert set(counts.tolist()) <= {25, 26}  # 25.6 each: floor, then the remainder by fraction
    assert torch.bincount(SORTED[idx[:50]], minlength=10).max() < 15  # shuffled: no prefix is class-sorted
    # unequal classes: proportional, remainder to the largest fractional parts
    uneven = torch.cat([torch.zeros(600), torch.ones(300), torch.full((100,), 2)]).long()
    assert torch.bincount(uneven[subset_index(1000, 64, seed=3, labels=uneven)]).tolist() == [38, 19, 7]


def test_the_draw_is_seeded_and_leaves_the_callers_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = subset_index(1500, 100, seed=4, labels=SORTED), subset_index(1500, 100, seed=4, labels=SORTED)
    assert torch.equal(a, b) and not torch.equal(a, subset_index(1500, 100, seed=5, labels=SORTED))
    assert torch.equal(torch.get_rng_state(), before)
    plain = subset_index(1500, 256, seed=0)  # no labels: a seeded permutation, not a prefix
    assert not torch.equal(plain, torch.arange(256)) and len(set(plain.tolist())) == 256
    assert torch.bincount(SORTED[plain], minlength=10).min() > 10
    assert torch.equal(torch.sort(subset_index(40, 100, seed=0)).values, torch.arange(40))  # n > N: all of them
    x, y, idx = real_subset(torch.arange(1500.0)[:, None], 30, seed=1, labels=SORTED)
    assert torch.equal(x[:, 0].long(), idx) and torch.equal(y, SORTED[idx])


class _FirstCoordinate(nn.Module):
    """D(x) = x₀: real iff the first coordinate is >= 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] * 4.0


@pytest.mark.parametrize("with_labels", [True, False])
def test_the_audit_scores_real_samples_of_every_class(with_labels: bool) -> None:
    """Class-sorted real data whose first five classes D calls real and last five fake: an audit that
    scored ``real[:n]`` would find every real sample called real (classes 0 and 1 only); a balanced
    draw finds about half. The report states the classes it drew."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sign = np.where(SORTED.numpy() < 5, 1.0, -1.0)
    real = torch.from_numpy(np.stack([sign * rng.uniform(0.5, 1.5, 1500), rng.normal(0, 0.3, 1500)], 1).astype(np.float32))
    G = MLPGenerator(nz=2, hidden=8, dim=2, bound=2.0)
    cfg = AuditConfig(n_probes=256, batch=16, k_steps=1, pgd_iterations=2, efficiency_steps=1, min_norm_probes=4,
                      eps_grid=(4 / 255,))
    report = audit_gan(G, _FirstCoordinate(), scorer_options={"bounds": (-2.0, 2.0)}, latent_shape=(2,), cfg=cfg,
                       real=real, real_labels=SORTED if with_labels else None)
    called_real = report["robustness_summary"]["clean_accuracy"]["real->fake"]
    assert called_real["n"] == 256 and 0.4 < called_real["value"] < 0.6  # real[:256]: 1.0
    drawn = report["real_samples"]
    assert drawn["n"] == 256 and drawn["of"] == 1500 and "seeded" in drawn["draw"]
    if with_labels:
        assert set(drawn["class_counts"]) <= {25, 26} and abs(called_real["value"] - 0.5) < 0.02
    else:
        assert drawn["class_counts"] is None


def test_a_wgan_critic_is_calibrated_on_every_class(tmp_path, monkeypatch) -> None:
    """``train --loss wgan`` hands the hook the real samples its critic's threshold is calibrated on:
    a stratified draw of the (class-sorted) data, not its first n_probes (class 0 alone)."""
    import ganrobust.hook
    from ganrobust.config import TrainConfig, WatchConfig
    from ganrobust.data import Dataset
    from ganrobust.train import train

    x = (SORTED.float()[:, None] / 10.0 + 0.01 * torch.randn(1500, 2)).clamp(-1, 1)
    data = Dataset("sorted", x, SORTED.clone(), (-1.0, 1.0))
    seen: dict[str, torch.Tensor] = {}
    real_watch = ganrobust.hook.watch

    def spy(G, D, run_dir, *, real=None, **kwargs):
        seen["real"] = real
        return real_watch(G, D, run_dir, real=real, **kwargs)

    monkeypatch.setattr(ganrobust.hook, "watch", spy)
    train(TrainConfig(steps=1, arch="mlp", loss="wgan", batch=16, n_critic=1, seed=0), run_dir=tmp_path / "run",
          data=data, watch_config=WatchConfig(every=1000, n_probes=100))  # no step measured: the hand-over is the test
    classes = torch.round(seen["real"][:, 0] * 10).long().clamp(0, 9)
    assert seen["real"].shape[0] == 100 and torch.bincount(classes, minlength=10).tolist() == [10] * 10
