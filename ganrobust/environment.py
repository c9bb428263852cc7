"""What a bug report needs: versions of everything that shapes the numbers, and the hardware."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import torch


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions and hardware, without importing the optional backends (metadata only)."""
    import numpy

    from ganrobust import __version__

    from ganrobust.attacks.precision import host_facts, native_precisions, resolve_precision
    from ganrobust.config import PRECISION

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    facts = host_facts(device)
    return {
        "ganrobust": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torchattacks": _version("torchattacks"),
        "foolbox": _version("foolbox"),
        "safetensors": _version("safetensors"),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else "none",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": facts.cpu_capability,
        "cpu_precision_flags": " ".join(sorted(facts.cpu_flags)) or "none",
        "native_precisions": " ".join(p.value for p in native_precisions(facts)),
        "precision": f"{PRECISION} -> {resolve_precision(PRECISION, device).value}",
    }
