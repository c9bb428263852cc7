"""Sample quality that works offline, for lining runs up (``ganrobust compare``).

* **The 8-Gaussians ring** — the standard mode-collapse measures (VEEGAN, Srivastava et al.
  2017; PacGAN, Lin et al. 2018). A sample is *high quality* when it lies within 3 standard
  deviations of its nearest mode; a mode is *covered* when at least ``min_share`` of all
  samples are high-quality samples of that mode (PacGAN's 20 of 2,500 by default, so one
  stray sample does not count as a mode). Also the KL divergence of the high-quality samples'
  mode histogram from the uniform one (0 when every mode is equally represented).
* **Labelled images** (shapes, digits, any labelled ``.npz``) — a Fréchet distance between
  real and generated samples in the penultimate-layer features of a small classifier trained
  here, seeded, on the dataset's own labels (:class:`FeatureNet`). It is FID's formula in a
  feature space that needs no download; its values are comparable between runs scored by
  the *same* classifier and sample count, never with published FIDs. Reported with a
  jackknife interval, the real-vs-real floor at the same sample count, the classifier's
  held-out accuracy, and the class histogram of the generated samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.data import Dataset, ring_modes
from ganrobust.module_state import preserved_rng
from ganrobust.errors import InputError
from ganrobust.stats import Estimate, clopper_pearson

PACGAN_MIN_SHARE = 20 / 2500


# -- the ring ---------------------------------------------------------------------------
def ring_quality(samples: torch.Tensor | np.ndarray, *, radius: float = 2.0, std: float = 0.02,
                 n_sigma: float = 3.0, min_share: float = PACGAN_MIN_SHARE) -> dict[str, Any]:
    """Modes covered, high-quality share and mode KL of 2-D samples against the ring of eight."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)
    if x.shape[1] != 2:
        raise InputError(f"ring quality needs 2-D samples, got dimension {x.shape[1]}")
    if not torch.isfinite(x).all():
        raise InputError("the generator produced NaN or inf samples; quality is undefined")
    distance = torch.cdist(x, ring_modes(radius).to(torch.float64))
    nearest_distance, nearest = distance.min(dim=1)
    good = nearest_distance <= n_sigma * std
    counts = torch.bincount(nearest[good], minlength=8).numpy()
    n = len(x)
    covered = int((counts >= max(1, math.ceil(min_share * n))).sum())
    hist = counts / max(counts.sum(), 1)
    kl = float(np.sum(np.where(hist > 0, hist * np.log(np.where(hist > 0, hist * 8, 1.0)), 0.0))) if counts.sum() else math.nan
    return {"measure": "ring", "n": n, "modes_covered": covered, "modes": 8,
            "high_quality": clopper_pearson(int(good.sum()), n).to_dict(), "mode_counts": counts.tolist(),
            "mode_kl": kl, "threshold": {"n_sigma": n_sigma, "std": std, "min_share": min_share}}


# -- the Fréchet distance ---------------------------------------------------------------
def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, in float64.

    The symmetric form has the same trace as FID's ``sqrtm(Σ₁Σ₂)`` (similar matrices) but only
    needs symmetric eigendecompositions, so it never goes complex on near-singular covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root = _sqrtm_psd(s1)
    middle = root @ s2 @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    return float(max(0.0, np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt))


def _moments(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_estimate(real: np.ndarray, fake: np.ndarray, *, groups: int = 20, seed: int = 0) -> Estimate:
    """Fréchet distance between two feature sets, with a 95% interval from the grouped
    (delete-a-group) jackknife over both sets: ``value ± 1.96·SE``.

    Not the bootstrap: resampling with replacement duplicates samples, which inflates the
    covariance terms, so bootstrap intervals of a Fréchet distance sit above the estimate
    (at n=449 they miss it entirely). The estimator's own upward bias at finite n is what
    :func:`real_floor` reports.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    value = frechet_distance(*_moments(real), *_moments(fake))
    g = min(groups, len(real), len(fake))
    if g < 2:
        return Estimate(value, math.nan, math.nan, len(fake))
    rng = np.random.default_rng(seed)
    real_group = rng.permutation(len(real)) % g
    fake_group = rng.permutation(len(fake)) % g
    leave_out = np.array([frechet_distance(*_moments(real[real_group != i]), *_moments(fake[fake_group != i]))
                          for i in range(g)])
    se = math.sqrt((g - 1) / g * float(np.sum((leave_out - leave_out.mean()) ** 2)))
    return Estimate(value, max(0.0, value - 1.959963984540054 * se), value + 1.959963984540054 * se, len(fake))


class FeatureNet(nn.Module):
    """A small CNN classifier; ``features`` is its 64-d penultimate layer (for 32x32 inputs:
    three stride-2 convolutions to 4x4, then a linear layer; about 4 MFLOP per sample)."""

    def __init__(self, channels: int, classes: int, width: int = 32, size: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * width * math.ceil(size / 8) ** 2, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class FeatureSpace:
    """A trained :class:`FeatureNet` and what it rests on."""

    net: FeatureNet
    accuracy: Estimate           # held-out classification accuracy
    classes: int
    reference: torch.Tensor      # held-out real samples every run is compared with
    reference_labels: torch.Tensor
    floor_set: torch.Tensor      # other held-out real samples: the perfect generator's stand-in

    @cached_property
    def reference_features(self) -> np.ndarray:
        """Features of the reference set, embedded once for every score against it."""
        return self.embed(self.reference)[0]

    @property
    def max_samples(self) -> int:
        """The largest sample count at which runs and the floor are scored alike."""
        return min(len(self.reference), len(self.floor_set))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Features and predicted labels of ``x`` (on the CPU, in float32)."""
        feats, labels = [], []
        for i in range(0, len(x), batch):
            f = self.net.features(x[i:i + batch].float().cpu())
            feats.append(f)
            labels.append(self.net.head(f).argmax(1))
        return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def train_feature_net(data: Dataset, *, steps: int = 300, batch: int = 128, held_out: float = 0.5,
                      seed: int = 0) -> FeatureSpace:
    """Train :class:`FeatureNet` on ``data``'s labels (a seeded split; the global RNG is left as it was)."""
    if data.y is None:
        raise InputError(f"{data.name} has no labels: the Fréchet distance needs a classifier trained on them "
                         f"(an .npz needs an array 'y')")
    if data.x.dim() != 4:
        raise InputError(f"the Fréchet distance is for image data (N, C, H, W); {data.name} has shape {tuple(data.x.shape)}")
    classes = int(data.y.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=gen)
    cut = int(round(len(data) * (1 - held_out)))
    half = cut + (len(data) - cut) // 2
    train_idx, ref_idx, floor_idx = order[:cut], order[cut:half], order[half:]
    if len(ref_idx) < 50 or classes < 2:
        raise InputError(f"{data.name} is too small for a held-out feature space ({len(data)} samples, {classes} classes)")
    x, y = data.x.float().cpu(), data.y.long().cpu()
    with preserved_rng():
        torch.manual_seed(seed)
        net = FeatureNet(x.shape[1], classes, size=x.shape[-1])
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        for _ in range(steps):
            idx = train_idx[torch.randint(0, len(train_idx), (batch,), generator=gen)]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval().requires_grad_(False)
    space = FeatureSpace(net, clopper_pearson(0, 0), classes, x[ref_idx], y[ref_idx], x[floor_idx])
    held_out = torch.cat([ref_idx, floor_idx])
    _, predicted = space.embed(x[held_out])
    space.accuracy = clopper_pearson(int((predicted == y[held_out].numpy()).sum()), len(held_out))
    return space


def image_quality(space: FeatureSpace, samples: torch.Tensor, *, seed: int = 0) -> dict[str, Any]:
    """Fréchet distance of generated ``samples`` to the held-out real set, with its floor and class histogram."""
    if not torch.isfinite(samples).all():
        raise InputError("the generator produced NaN or inf samples; quality is undefined")
    real = space.reference_features
    fake, predicted = space.embed(samples)
    counts = np.bincount(predicted, minlength=space.classes)
    real_counts = np.bincount(space.reference_labels.numpy(), minlength=space.classes)
    return {"measure": "frechet", "n": len(samples), "n_real": len(real),
            "frechet": frechet_estimate(real, fake, seed=seed).to_dict(),
            "class_counts": counts.tolist(), "real_class_counts": real_counts.tolist(),
            # a class counts as covered with at least a tenth of its balanced share of the samples
            "classes_covered": int((counts >= max(1, math.ceil(0.1 * len(samples) / space.classes))).sum()),
            "classes": space.classes}


def real_floor(space: FeatureSpace, n: int, *, seed: int = 0) -> Estimate:
    """Fréchet distance between ``n`` held-out real samples (disjoint from the reference set,
    unseen by the classifier) and the reference set: what a perfect generator would score at
    this sample count — the estimator's own bias, the floor every run is read against."""
    if n > len(space.floor_set):
        raise InputError(f"the floor needs n <= {len(space.floor_set)} real samples, got {n}")
    real = space.reference_features
    other, _ = space.embed(space.floor_set[:n])
    return frechet_estimate(real, other, seed=seed)
