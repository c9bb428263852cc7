"""A folder of images (PNG/JPEG) as real data, read with Pillow.

    DIR/*.png                  unlabelled images
    DIR/<class>/*.png          labelled: one sub-folder per class, labels 0..K-1 in sorted name order

Every image is converted to the model's channels (``L`` for 1, ``RGB`` for 3), resized to the
model's square resolution (Lanczos) and scaled from [0, 255] to the data range ``bounds``.
Images that are not square are refused rather than distorted: crop them first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganrobust.data import Dataset
from ganrobust.errors import InputError

SUFFIXES = (".png", ".jpg", ".jpeg")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def image_files(path: str | Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The image files of a folder, with their labels and class names when it has class sub-folders."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of images")
    top = _images(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and _images(p))
    if classes and top:
        raise InputError(f"{root} has images both at the top and in class sub-folders ({', '.join(classes[:5])}); "
                         f"put every image in its class sub-folder, or none")
    if classes:
        files, labels = [], []
        for label, name in enumerate(classes):
            found = _images(root / name)
            files += found
            labels += [label] * len(found)
        return files, labels, classes
    if not top:
        raise InputError(f"{root} holds no PNG or JPEG image (neither at the top nor in class sub-folders)")
    return top, None, None


def load_image_folder(path: str | Path, *, size: int, channels: int | None = None,
                      bounds: tuple[float, float] = (-1.0, 1.0), limit: int | None = None) -> Dataset:
    """Images of ``path`` as a :class:`Dataset` of shape (N, channels, size, size) in ``bounds``.

    ``channels`` (1 or 3) is the model's; None keeps grayscale folders grayscale and makes
    anything else RGB. ``limit`` reads at most that many images (spread over the classes in order).
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # a declared dependency; only a broken install lacks it
        raise InputError("reading image folders needs Pillow: pip install pillow") from None
    if channels not in (None, 1, 3):
        raise InputError(f"image folders feed models with 1 (grayscale) or 3 (RGB) channels; this model has {channels}")
    if size < 1:
        raise InputError(f"expected a positive image size, got {size}")
    files, labels, classes = image_files(path)
    if limit is not None and len(files) > limit:
        keep = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in keep]
        labels = None if labels is None else [labels[i] for i in keep]
    images = []
    for f in files:
        try:
            with Image.open(f) as img:
                img.load()
                images.append(img.copy())
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise InputError(f"cannot read {f} as an image ({type(err).__name__}: {err}); remove or replace it") from None
    if channels is None:
        channels = 1 if all(img.mode in ("1", "L", "LA", "I", "I;16") for img in images) else 3
    mode = "L" if channels == 1 else "RGB"
    lo, hi = bounds
    arrays = []
    for f, img in zip(files, images):
        if img.width != img.height:
            raise InputError(f"{f} is {img.width}x{img.height}, not square: the model makes {size}x{size} images; "
                             f"crop the images to squares first")
        img = img.convert(mode)
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        a = np.asarray(img, dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    x = torch.from_numpy(np.stack(arrays)) * (hi - lo) + lo
    y = None if labels is None else torch.tensor(labels, dtype=torch.long)
    return Dataset(Path(path).name, x.clamp(lo, hi), y, (float(lo), float(hi)), classes=classes)
