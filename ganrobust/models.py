"""Reference generator/discriminator pairs.

``DCGANGenerator``/``DCGANDiscriminator`` follow pytorch/examples ``dcgan/main.py`` layer for
layer (``nz``, ``ngf``, ``ndf``, ``nc``), so their state-dict keys (``main.0.weight``, ...) load
that script's ``netG_epoch_*.pth``/``netD_epoch_*.pth`` files; ``image_size=32`` drops one
stride-2 stage. The script's D ends in ``nn.Sigmoid``: pass ``sigmoid=True`` to match it
(its Scorer then uses ``kind='prob'``, which strips the sigmoid). ``spectral_norm=True``
gives a spectrally normalised D without BatchNorm (Miyato et al. 2018).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ganrobust.errors import InputError


def _stages(image_size: int) -> int:
    if image_size not in (32, 64):
        raise InputError(f"expected image_size 32 or 64, got {image_size}")
    return 3 if image_size == 32 else 4  # stride-2 stages between 4x4 and the image


class DCGANGenerator(nn.Module):
    """``z (B, nz) or (B, nz, 1, 1) -> x (B, nc, S, S)`` in [-1, 1] (tanh)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64) -> None:
        super().__init__()
        self.config = {"nz": nz, "ngf": ngf, "nc": nc, "image_size": image_size}
        self.nz = nz
        n = _stages(image_size)
        mult = 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """``x (B, nc, S, S) -> s (B,)``: a realness logit (or a probability with ``sigmoid=True``)."""

    def __init__(self, ndf: int = 64, nc: int = 3, image_size: int = 64, *, sigmoid: bool = False,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = {"ndf": ndf, "nc": nc, "image_size": image_size, "sigmoid": sigmoid,
                       "spectral_norm": spectral_norm}
        n = _stages(image_size)
        wrap = _sn if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(nc, ndf, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for _ in range(n - 1):
            layers.append(wrap(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False)))
            if not spectral_norm:
                layers.append(nn.BatchNorm2d(ndf * mult * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            mult *= 2
        layers.append(wrap(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False)))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


class MLPGenerator(nn.Module):
    """``z (B, nz) -> x (B, dim)``; unbounded, or with ``bound`` squashed into (−bound, bound) by
    ``bound · tanh(h / bound)`` (the identity near 0, like DCGAN's final tanh for images), so
    that samples stay in the data range the measurements check."""

    def __init__(self, nz: int = 2, hidden: int = 128, dim: int = 2, depth: int = 3, bound: float | None = None) -> None:
        super().__init__()
        if bound is not None and not bound > 0:
            raise InputError(f"expected bound > 0 or None, got {bound}")
        self.config = {"nz": nz, "hidden": hidden, "dim": dim, "depth": depth, "bound": bound}
        self.nz = nz
        self.bound = bound
        layers: list[nn.Module] = []
        width = nz
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.net(z)
        return h if self.bound is None else self.bound * torch.tanh(h / self.bound)


class MLPDiscriminator(nn.Module):
    """``x (B, dim) -> s (B,)`` with LeakyReLU(0.2); ``spectral_norm=True`` makes each layer
    at most 1-Lipschitz in L2 (up to the power-iteration estimate)."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, *, spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "spectral_norm": spectral_norm}
        wrap = _sn if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [wrap(nn.Linear(width, hidden)), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(wrap(nn.Linear(width, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


class ConditionalDCGANGenerator(nn.Module):
    """``G(z, y)``: a DCGAN generator whose input is ``z`` concatenated with a learned class
    embedding of ``y`` (B,) integer labels -> x (B, nc, S, S) in [-1, 1]."""

    def __init__(self, nz: int = 64, ngf: int = 32, nc: int = 3, image_size: int = 32, num_classes: int = 10,
                 embed_dim: int = 16) -> None:
        super().__init__()
        self.config = {"nz": nz, "ngf": ngf, "nc": nc, "image_size": image_size, "num_classes": num_classes,
                       "embed_dim": embed_dim}
        self.nz, self.num_classes = nz, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = DCGANGenerator(nz=nz + embed_dim, ngf=ngf, nc=nc, image_size=image_size)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = z.flatten(1)  # (B, nz)
        return self.body(torch.cat([z, self.embed(y.long())], dim=1))


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = w·h(x) + <e_y, h(x)>`` (Miyato & Koyama 2018): a DCGAN convolutional trunk,
    ``h`` its features summed over space (B, C), ``e_y`` a class embedding -> a realness logit (B,)."""

    def __init__(self, ndf: int = 32, nc: int = 3, image_size: int = 32, num_classes: int = 10, *,
                 spectral_norm: bool = True) -> None:
        super().__init__()
        self.config = {"ndf": ndf, "nc": nc, "image_size": image_size, "num_classes": num_classes,
                       "spectral_norm": spectral_norm}
        self.num_classes = num_classes
        n = _stages(image_size)
        wrap = _sn if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(nc, ndf, 4, 2, 1)), nn.LeakyReLU(0.2)]
        mult = 1
        for _ in range(n - 1):
            layers += [wrap(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1)), nn.LeakyReLU(0.2)]
            mult *= 2
        self.trunk = nn.Sequential(*layers)
        self.linear = wrap(nn.Linear(ndf * mult, 1))
        self.embed = wrap(nn.Embedding(num_classes, ndf * mult))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x).sum(dim=(2, 3))  # (B, C)
        return self.linear(h).squeeze(1) + (self.embed(y.long()) * h).sum(dim=1)


ARCHITECTURES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "mlp": (MLPGenerator, MLPDiscriminator),
    "cdcgan": (ConditionalDCGANGenerator, ProjectionDiscriminator),
}


def build_pair(arch: str, g_kwargs: dict[str, Any] | None = None, d_kwargs: dict[str, Any] | None = None
               ) -> tuple[nn.Module, nn.Module]:
    """Instantiate a built-in pair by name."""
    if arch not in ARCHITECTURES:
        raise InputError(f"expected an architecture among {sorted(ARCHITECTURES)}, got {arch!r}")
    g_cls, d_cls = ARCHITECTURES[arch]
    return g_cls(**(g_kwargs or {})), d_cls(**(d_kwargs or {}))


def init_dcgan_weights(m: nn.Module) -> None:
    """pytorch/examples' ``weights_init``: N(0, 0.02) convs, N(1, 0.02) BatchNorm scales."""
    name = type(m).__name__
    if "Conv" in name and getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def import_object(spec: str) -> Any:
    """The object an import path ``package.module:Attr`` (``Attr`` may be dotted) names: a user's model
    class or GAN adapter. ValueError with what failed and the fix."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise InputError(f"expected an import path like package.module:Class, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as err:  # an import can fail in many ways
        text = str(err).strip().splitlines()
        raise InputError(f"cannot import {spec!r} ({type(err).__name__}: {text[0] if text else ''}); is the package "
                         f"installed and on PYTHONPATH?") from None
    return obj
