"""``--data DIR``: a folder of PNG/JPEG images, through Pillow, at the model's size, channels and range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganrobust.cli.main import cli
from ganrobust.data import load_dataset
from ganrobust.image_folder import load_image_folder
from ganrobust.models import DCGANDiscriminator, DCGANGenerator


def _write(folder: Path, name: str, array: np.ndarray, fmt: str = "PNG") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name, format=fmt)


def test_class_sub_folders_give_labels_in_sorted_order_and_pixels_map_to_the_range(tmp_path: Path) -> None:
    white = np.full((40, 40, 3), 255, np.uint8)
    black = np.zeros((40, 40, 3), np.uint8)
    _write(tmp_path / "cats", "a.png", white)
    _write(tmp_path / "cats", "b.jpg", white, "JPEG")
    _write(tmp_path / "ants", "c.png", black)
    data = load_image_folder(tmp_path, size=32, channels=3, bounds=(-1.0, 1.0))
    assert data.x.shape == (3, 3, 32, 32) and data.classes == ["ants", "cats"]
    assert data.y.tolist() == [0, 1, 1]
    assert torch.allclose(data.x[0], torch.full((3, 32, 32), -1.0))
    assert torch.allclose(data.x[1], torch.full((3, 32, 32), 1.0))
    assert data.x[2].min() > 0.95  # JPEG: close to white, still inside the range
    gray = load_image_folder(tmp_path, size=8, channels=1, bounds=(0.0, 1.0))
    assert gray.x.shape == (3, 1, 8, 8) and float(gray.x.min()) == 0.0 and float(gray.x.max()) == 1.0


def test_an_unlabelled_folder_and_load_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        _write(tmp_path, f"{i}.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    data = load_dataset(str(tmp_path), size=32)
    assert data.y is None and data.x.shape == (4, 1, 32, 32)  # grayscale stays one channel
    assert float(data.x.min()) >= -1 and float(data.x.max()) <= 1


@pytest.mark.parametrize("case", ["not square", "empty", "not an image", "wrong channels for G"])
def test_bad_image_folders_are_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    torch.manual_seed(0)
    torch.save({"G": DCGANGenerator(nz=8, ngf=8, nc=3, image_size=32).state_dict(),
                "D": DCGANDiscriminator(ndf=8, nc=3, image_size=32).state_dict()}, tmp_path / "pair.pt")
    folder = tmp_path / "images"
    folder.mkdir()
    words = {"not square": "not square", "empty": "no PNG or JPEG", "not an image": "cannot read",
             "wrong channels for G": "but G makes"}[case]
    data = str(folder)
    if case == "not square":
        _write(folder, "wide.png", np.zeros((20, 30, 3), np.uint8))
    elif case == "not an image":
        (folder / "broken.png").write_bytes(b"not a png at all")
    elif case == "wrong channels for G":
        np.savez(tmp_path / "gray.npz", x=np.zeros((4, 1, 32, 32), np.float32))
        data = str(tmp_path / "gray.npz")
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "pair.pt"), "--data", data, "--out",
                                      str(tmp_path / "o"), "--n-probes", "8", "--k-steps", "1"])
    assert result.exit_code == 2, (case, result.output)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last and "Traceback" not in result.output, (case, result.output)
