"""The distribution is what the tree says: every module lands at its mapped path."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"ganrobust": "ganrobust", "attacks": "ganrobust/attacks", "cli": "ganrobust/cli"}


def test_wheel_contains_every_source_module_at_its_mapped_path(tmp_path: Path) -> None:
    pytest.importorskip("build")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("ganrobust-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{MAPPING[src]}/{path.relative_to(ROOT / src).as_posix()}"
                for src in MAPPING for path in (ROOT / src).rglob("*.py")}
    assert expected <= names, sorted(expected - names)
    assert "ganrobust/py.typed" in names
    assert not any(n.startswith(("attacks/", "cli/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ganrobust = ganrobust.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_every_package_directory_is_listed_in_pyproject() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {MAPPING[src].replace("/", ".") + ("." + p.parent.relative_to(ROOT / src).as_posix().replace("/", ".")
                                                if p.parent != ROOT / src else "")
             for src in MAPPING for p in (ROOT / src).rglob("__init__.py")}
    assert found == listed


def test_never_imports_torchvision_or_robustbench() -> None:
    code = (
        "import os, sys, torch\n"
        "os.environ['GIT_PYTHON_REFRESH'] = 'quiet'\n"
        "import ganrobust, ganrobust.attacks, ganrobust.cli.main\n"
        "from ganrobust import Scorer\n"
        "from ganrobust.attacks import TorchattacksAttack, FoolboxAttack\n"
        "d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1), torch.nn.Flatten(0))\n"
        "x = torch.rand(4, 3, 2, 2) * 2 - 1\n"
        "TorchattacksAttack('PGD')(Scorer(d), x, eps=0.05)\n"
        "FoolboxAttack('PGD')(Scorer(d), x, eps=0.05)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'robustbench'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_installing_the_project_left_torch_unchanged() -> None:
    """tools/bootstrap.sh records the torch it pinned before installing ganrobust."""
    import torch

    pin = Path(sys.prefix) / "ganrobust-constraints.txt"
    if not pin.exists():
        pytest.skip(f"not in an environment built by tools/bootstrap.sh ({pin} missing)")
    pinned = dict(line.split("==", 1) for line in pin.read_text().split() if "==" in line)
    assert torch.__version__ == pinned["torch"]
