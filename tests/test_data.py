from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrobust.data import digits, eight_gaussians, load_array, load_dataset, ring_modes, shapes


def test_shapes_are_seeded_in_range_and_labelled() -> None:
    a, b = shapes(64, seed=3), shapes(64, seed=3)
    assert torch.equal(a.x, b.x) and a.x.shape == (64, 3, 32, 32)
    assert a.x.min() >= -1 and a.x.max() <= 1 and set(a.y.tolist()) == {0, 1, 2}
    assert not torch.equal(a.x, shapes(64, seed=4).x)


def test_eight_gaussians_sit_on_their_modes() -> None:
    d = eight_gaussians(800, seed=0)
    dist = (d.x - ring_modes()[d.y]).norm(dim=1)
    assert dist.max() < 0.2 and d.x.shape == (800, 2)


def test_digits_ship_inside_scikit_learn() -> None:
    d = digits(size=32)
    assert d.x.shape == (1797, 1, 32, 32) and d.x.min() >= -1 and d.x.max() <= 1


def test_arrays_from_the_user(tmp_path) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (10, 2)).astype(np.float32)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(10))
    d = load_dataset(str(tmp_path / "a.npz"))
    assert torch.equal(d.x, torch.from_numpy(x)) and d.y.tolist() == list(range(10))
    np.save(tmp_path / "far.npy", x * 5)
    with pytest.raises(ValueError, match="outside the data range"):
        load_array(tmp_path / "far.npy")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="could not be read|truncated"):
        load_array(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
