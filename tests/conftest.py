"""Shared fixtures: small discriminators whose behaviour is known exactly."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.models import DCGANDiscriminator, MLPDiscriminator, init_dcgan_weights

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# precision="auto" caches its timings here, never in the user's ~/.cache (issue 22)
os.environ.setdefault("GANROBUST_CACHE_DIR", tempfile.mkdtemp(prefix="ganrobust-cache-"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


class LinearD(nn.Module):
    """s = w·flatten(x) + b: the exact minimum norms are |s|/‖w‖₂ (l2) and |s|/‖w‖₁ (linf)."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.lin = nn.Linear(w.numel(), 1)
        with torch.no_grad():
            self.lin.weight.copy_(w.reshape(1, -1))
            self.lin.bias.fill_(b)

    @property
    def w(self) -> torch.Tensor:
        return self.lin.weight.detach()[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1)).squeeze(1)


@pytest.fixture
def linear_d() -> LinearD:
    g = torch.Generator().manual_seed(0)
    return LinearD(torch.randn(3 * 4 * 4, generator=g), b=0.0)


@pytest.fixture
def central_x() -> torch.Tensor:
    """Points well inside [-1, 1], so the box never binds for the linear optimum."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(48, 3, 4, 4, generator=g) * 2 - 1) * 0.2


def trained_like_dcgan(seed: int = 0, ndf: int = 16) -> DCGANDiscriminator:
    """A DCGAN-32 D with BatchNorm statistics that are not the identity."""
    torch.manual_seed(seed)
    d = DCGANDiscriminator(ndf=ndf, nc=3, image_size=32)
    d.apply(init_dcgan_weights)
    d.train()
    with torch.no_grad():
        for _ in range(3):
            d(torch.rand(32, 3, 32, 32) * 2 - 1)
    return d


@pytest.fixture
def dcgan_d() -> DCGANDiscriminator:
    return trained_like_dcgan()


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.rand(96, 3, 32, 32, generator=g) * 2 - 1


@pytest.fixture
def sn_mlp() -> MLPDiscriminator:
    torch.manual_seed(3)
    d = MLPDiscriminator(dim=8, hidden=32, depth=3, spectral_norm=True)
    d.train()
    with torch.no_grad():  # converge the power iteration
        for _ in range(50):
            d(torch.randn(16, 8))
    return d.eval()


class NoisyD(nn.Module):
    """Dropout kept on at audit time: a stochastic discriminator."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.lin(x), 0.5, training=True).squeeze(1)


@pytest.fixture
def noisy_d() -> NoisyD:
    return NoisyD()
