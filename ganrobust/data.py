"""Built-in offline data: nothing is downloaded, ever.

* ``shapes``: procedurally generated 32x32 RGB images of circles, squares and triangles
  (labels 0, 1, 2) in random colours, sizes and positions on a dark background; seeded.
* ``8gaussians``: the ring of eight Gaussians (labels = mode), the standard mode-collapse toy.
* ``digits``: scikit-learn's bundled 8x8 handwritten digits (the ``digits`` extra), upsampled.
* any ``.npz`` (array ``x``, optional ``y``) or ``.npy`` file of samples in the data range;
* a folder of PNG/JPEG images, labelled by class sub-folders (:mod:`ganrobust.image_folder`).

Every loader returns a :class:`Dataset` with samples in its ``bounds``.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganrobust.errors import InputError

BUILTIN = ("shapes", "8gaussians", "digits")


@dataclass
class Dataset:
    name: str
    x: torch.Tensor                 # (N, ...) in bounds
    y: torch.Tensor | None          # (N,) integer labels, when known
    bounds: tuple[float, float]
    classes: list[str] | None = None  # class names of the labels (image folders' sub-folders)

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random batch (global RNG unless a generator is given, like a DataLoader)."""
        idx = torch.randint(0, len(self), (size,), generator=generator)
        return self.x[idx]


def subset_index(n_total: int, n: int, *, seed: int, labels: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """Indices of a seeded draw of ``min(n, n_total)`` of ``n_total`` samples, never a prefix: data often
    arrive sorted by class (image folders, class-ordered arrays), and ``x[:n]`` would hold the first
    classes only. Without ``labels``, the first n of a seeded permutation; with them, stratified:
    each class gets ``floor(n·share)`` samples and the remaining ones go to the largest fractional
    parts (ties in a seeded order), drawn without replacement within the class; the result is
    shuffled, so no prefix of it is class-sorted either. The caller's RNG is not touched."""
    if n_total < 0 or n < 0:
        raise ValueError(f"expected non-negative sizes, got n_total={n_total}, n={n}")
    rng = np.random.default_rng(seed)
    n = min(n, n_total)
    if labels is None or n == n_total:
        return torch.from_numpy(rng.permutation(n_total)[:n])
    y = (labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)).astype(np.int64).ravel()
    if y.size != n_total:
        raise ValueError(f"expected {n_total} labels, got {y.size}")
    classes, counts = np.unique(y, return_counts=True)
    quota = n * counts / n_total
    take = np.floor(quota).astype(int)
    rest = n - int(take.sum())
    order = np.lexsort((rng.permutation(len(classes)), -(quota - take)))  # largest fraction first, seeded ties
    take[order[:rest]] += 1
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    return torch.from_numpy(rng.permutation(np.concatenate(picked)))


def real_subset(x: torch.Tensor, n: int, *, seed: int,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(x[idx], labels[idx], idx)`` for :func:`subset_index`: the real samples an audit, a critic's
    calibration or a comparison uses in place of ``x[:n]`` (stratified by ``labels`` when given)."""
    idx = subset_index(int(x.shape[0]), n, seed=seed, labels=labels)
    return x[idx.to(x.device)], None if labels is None else labels[idx.to(labels.device)], idx


def shapes(n: int = 10000, *, seed: int = 0, size: int = 32) -> Dataset:
    """Circles (0), squares (1) and triangles (2) in [-1, 1], shape (n, 3, size, size)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    label = rng.integers(0, 3, n)
    radius = rng.uniform(0.18, 0.34, n).astype(np.float32) * size
    cx = rng.uniform(0.0, 1.0, n).astype(np.float32) * (size - 2 * radius) + radius
    cy = rng.uniform(0.0, 1.0, n).astype(np.float32) * (size - 2 * radius) + radius
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    r = radius[:, None, None]
    circle = dx**2 + dy**2 <= r**2
    square = (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    # upward triangle: apex at the top, base at the bottom
    triangle = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    mask = np.where(label[:, None, None] == 0, circle, np.where(label[:, None, None] == 1, square, triangle))
    colour = rng.uniform(0.35, 1.0, (n, 3, 1, 1)).astype(np.float32)
    background = rng.uniform(0.0, 0.25, (n, 3, 1, 1)).astype(np.float32)
    img = np.where(mask[:, None], colour, background)
    img = img + rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    x = torch.from_numpy(np.clip(img, 0.0, 1.0) * 2 - 1)
    return Dataset("shapes", x, torch.from_numpy(label), (-1.0, 1.0))


def eight_gaussians(n: int = 10000, *, seed: int = 0, radius: float = 2.0, std: float = 0.02) -> Dataset:
    """The ring of eight Gaussians (n, 2); bounds generous enough for a generator's tails."""
    rng = np.random.default_rng(seed)
    mode = rng.integers(0, 8, n)
    angle = mode * (2 * math.pi / 8)
    centers = np.stack([np.cos(angle), np.sin(angle)], 1) * radius
    x = centers + rng.normal(0, std, (n, 2))
    return Dataset("8gaussians", torch.from_numpy(x.astype(np.float32)), torch.from_numpy(mode), (-4.0, 4.0))


def ring_modes(radius: float = 2.0) -> torch.Tensor:
    angle = torch.arange(8) * (2 * math.pi / 8)
    return torch.stack([torch.cos(angle), torch.sin(angle)], 1) * radius


def digits(*, size: int = 32) -> Dataset:
    """scikit-learn's 1,797 bundled 8x8 digits, upsampled to ``size`` (bilinear), in [-1, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError("the digits dataset needs scikit-learn: pip install 'ganrobust[digits]'") from None
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return Dataset("digits", x.clamp(0, 1) * 2 - 1, torch.from_numpy(bunch.target), (-1.0, 1.0))


def load_array(path: str | Path, bounds: tuple[float, float] = (-1.0, 1.0)) -> Dataset:
    """Samples from ``.npz`` (array ``x`` or the first array; optional ``y``) or ``.npy``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist; pass a built-in dataset ({', '.join(BUILTIN)}) or an .npz/.npy file")
    try:
        if p.suffix == ".npy":
            x, y = np.load(p, allow_pickle=False), None
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as arrays:
                if not arrays.files:
                    raise InputError(f"{p} holds no arrays")
                x = arrays["x"] if "x" in arrays.files else arrays[arrays.files[0]]
                y = arrays["y"] if "y" in arrays.files else None
        else:
            raise InputError(f"expected an .npz or .npy file, got {p.name}")
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise InputError(f"{p} could not be read as a numpy file ({err}); is it truncated?") from None
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2:
        raise InputError(f"expected a numeric array of samples (N, ...) in {p}, got dtype {x.dtype}, shape {x.shape}")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not torch.isfinite(xt).all():
        raise InputError(f"{p} contains NaN or inf samples")
    lo, hi = float(xt.min()), float(xt.max())
    if lo < bounds[0] - 1e-6 or hi > bounds[1] + 1e-6:
        raise InputError(f"samples in {p} span [{lo:.3g}, {hi:.3g}], outside the data range [{bounds[0]:g}, {bounds[1]:g}]; "
                         f"rescale them or pass the matching range")
    yt = None if y is None else torch.from_numpy(np.asarray(y).astype(np.int64))
    return Dataset(p.stem, xt, yt, bounds)


def load_dataset(name: str, *, n: int = 10000, seed: int = 0, size: int = 32) -> Dataset:
    """A built-in dataset by name, or an array file by path."""
    if name == "shapes":
        return shapes(n, seed=seed, size=size)
    if name in ("8gaussians", "eight_gaussians", "ring"):
        return eight_gaussians(n, seed=seed)
    if name == "digits":
        return digits(size=size)
    if name.endswith((".npz", ".npy")):
        return load_array(name)
    if Path(name).is_dir():
        from ganrobust.image_folder import load_image_folder

        return load_image_folder(name, size=size)
    raise InputError(f"unknown dataset {name!r}: expected one of {', '.join(BUILTIN)}, a path to an .npz/.npy file or "
                     f"a folder of images")
