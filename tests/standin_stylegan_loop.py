"""A stand-in for StyleGAN2-ADA's training loop, written here (not NVIDIA's code), with the traits
that matter to the watch hook:

* G has ``.mapping(z, c) -> ws`` and ``.synthesis(ws) -> img`` submodules and the loss calls them
  separately, never ``G.forward``; the mapping is called a second time with fresh latents for
  style mixing, and updates a ``w_avg`` buffer in training mode; the output is not squashed.
* networks are built through a ``persistent_class``-like decorator: a local subclass that takes
  the class's name in its module and records ``init_args``/``init_kwargs``;
* the loop runs phases Gmain / Greg / Dmain / Dreg with lazy regularisation: Greg (a path-length
  penalty on d img / d ws, no D involved) steps G's optimizer a second time every 4 iterations,
  Dreg (an R1 penalty) every 16; each phase toggles ``requires_grad`` of its module;
* ``G_ema = copy.deepcopy(G)`` and periodic snapshots ``pickle.dumps(copy.deepcopy(G).eval())``.

Imported by tests from the ``tests`` folder (``standin_stylegan_loop``), so pickles of its
classes and the class paths a run records resolve.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def persistent(cls: type) -> type:
    """Like StyleGAN's ``persistence.persistent_class``: a subclass defined here, renamed only."""

    class Decorator(cls):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._init_args, self._init_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)

        @property
        def init_args(self) -> tuple[Any, ...]:
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self) -> dict[str, Any]:
            return copy.deepcopy(self._init_kwargs)

        def __reduce__(self) -> Any:  # a local class pickles by the name it took in this module
            return _reconstruct, (type(self).__name__,), self.__dict__

    Decorator.__name__ = cls.__name__
    return Decorator


def _reconstruct(name: str) -> Any:
    cls = globals()[name]
    return cls.__new__(cls)


@persistent
class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.embed = nn.Linear(c_dim, w_dim) if c_dim else None
        self.fc = nn.Sequential(nn.Linear(z_dim + (w_dim if c_dim else 0), w_dim), nn.LeakyReLU(0.2),
                                nn.Linear(w_dim, w_dim))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1, skip_w_avg_update: bool = False
                ) -> torch.Tensor:
        x = F.normalize(z, dim=1)
        if self.c_dim:
            x = torch.cat([x, F.normalize(self.embed(c), dim=1)], dim=1)
        w = self.fc(x)
        if self.training and not skip_w_avg_update:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.995))
        if truncation_psi != 1:
            w = self.w_avg.lerp(w, truncation_psi)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)  # (N, num_ws, w_dim)


@persistent
class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, num_ws: int = 2) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels, self.num_ws = w_dim, img_resolution, img_channels, num_ws
        self.const = nn.Parameter(torch.randn(8, 4, 4))
        self.style = nn.Linear(w_dim, 8)
        self.conv = nn.Conv2d(8, 8, 3, 1, 1)
        self.to_rgb = nn.Conv2d(8, img_channels, 1)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1) * (1 + self.style(ws[:, 0])[:, :, None, None])
        x = F.interpolate(F.leaky_relu(self.conv(x), 0.2), size=self.img_resolution)
        x = x * (1 + self.style(ws[:, 1])[:, :, None, None])
        return 1.3 * torch.tanh(self.to_rgb(x))  # not squashed into [-1, 1]: it overshoots


@persistent
class Generator(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1, **synthesis_kwargs: Any
                ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi))


@persistent
class Discriminator(nn.Module):
    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, cmap_dim: int = 8) -> None:
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels, self.cmap_dim = c_dim, img_resolution, img_channels, cmap_dim
        self.conv = nn.Conv2d(img_channels, 8, 3, 2, 1)
        self.out = nn.Linear(8 * (img_resolution // 2) ** 2, cmap_dim if c_dim else 1)
        self.cmap = nn.Linear(c_dim, cmap_dim) if c_dim else None

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.out(F.leaky_relu(self.conv(img), 0.2).flatten(1))
        if self.c_dim:  # projection: (x * cmap).sum / sqrt(cmap_dim), shape (N, 1)
            x = (x * self.cmap(c)).sum(dim=1, keepdim=True) / self.cmap_dim ** 0.5
        return x


class Loss:
    """Gmain: non-saturating through D; Greg: path-length penalty (no D); Dmain; Dreg: R1."""

    def __init__(self, G: nn.Module, D: nn.Module, style_mixing_prob: float = 0.9, pl_weight: float = 2.0) -> None:
        self.G_mapping, self.G_synthesis, self.D = G.mapping, G.synthesis, D
        self.style_mixing_prob, self.pl_weight = style_mixing_prob, pl_weight
        self.pl_mean = torch.zeros([])

    def run_G(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.G_mapping(z, c)
        if self.style_mixing_prob > 0:  # a second mapping call, with fresh latents
            cutoff = int(torch.randint(1, ws.shape[1], ()))
            if float(torch.rand([])) < self.style_mixing_prob:
                ws = torch.cat([ws[:, :cutoff], self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]], 1)
        return self.G_synthesis(ws), ws

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float) -> None:
        if phase == "Gmain":
            img, _ = self.run_G(gen_z, gen_c)
            F.softplus(-self.D(img, gen_c)).mean().mul(gain).backward()
        elif phase == "Greg":
            n = gen_z.shape[0] // 2
            img, ws = self.run_G(gen_z[:n], gen_c[:n])
            noise = torch.randn_like(img) / img.shape[2]
            grads, = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean(), 0.01)
            self.pl_mean.copy_(pl_mean.detach())
            ((lengths - pl_mean).square() * self.pl_weight).mean().mul(gain).backward()
        elif phase == "Dmain":
            img, _ = self.run_G(gen_z, gen_c)
            loss = F.softplus(self.D(img.detach(), gen_c)).mean() + F.softplus(-self.D(real_img, real_c)).mean()
            loss.mul(gain).backward()
        elif phase == "Dreg":
            real = real_img.detach().requires_grad_(True)
            grads, = torch.autograd.grad(outputs=[self.D(real, real_c).sum()], inputs=[real], create_graph=True)
            (grads.square().sum([1, 2, 3]).mean() * 0.5).mul(gain).backward()


def build(c_dim: int = 0, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={})
    D = Discriminator(c_dim=c_dim, img_resolution=8, img_channels=3)
    return G, D


def train(G: nn.Module, D: nn.Module, iterations: int, batch: int = 8, watch: Any = None) -> dict[str, Any]:
    """StyleGAN2-ADA's phase loop over ``iterations`` batches; ``watch`` is called once the
    networks exist (before ``G_ema`` is copied, as a user adding one line at the top would)."""
    torch.manual_seed(1)
    c_dim = G.c_dim
    watcher = watch() if watch is not None else None
    G_ema = copy.deepcopy(G).eval()
    ratio = {"G": 4 / 5, "D": 16 / 17}
    opt_g = torch.optim.Adam(G.parameters(), lr=0.002 * ratio["G"], betas=(0.0, 0.99 ** ratio["G"]))
    opt_d = torch.optim.Adam(D.parameters(), lr=0.002 * ratio["D"], betas=(0.0, 0.99 ** ratio["D"]))
    phases = [("Gmain", G, opt_g, 1), ("Greg", G, opt_g, 4), ("Dmain", D, opt_d, 1), ("Dreg", D, opt_d, 16)]
    loss = Loss(G, D)
    snapshots: list[bytes] = []
    try:
        for batch_idx in range(iterations):
            real = torch.rand(batch, 3, 8, 8) * 2 - 1
            real_c = F.one_hot(torch.randint(0, c_dim, (batch,)), c_dim).float() if c_dim else torch.zeros(batch, 0)
            all_z = torch.randn(len(phases), batch, G.z_dim)
            all_c = [F.one_hot(torch.randint(0, c_dim, (batch,)), c_dim).float() if c_dim else torch.zeros(batch, 0)
                     for _ in phases]
            for (name, module, opt, interval), z, c in zip(phases, all_z, all_c):
                if batch_idx % interval != 0:
                    continue
                opt.zero_grad(set_to_none=True)
                module.requires_grad_(True)
                loss.accumulate_gradients(name, real, real_c, z, c, gain=interval)
                module.requires_grad_(False)
                for p in module.parameters():
                    if p.grad is not None:
                        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
                opt.step()
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                    p_ema.copy_(p.lerp(p_ema, 0.9))
            if batch_idx % 2 == 1:  # a network snapshot, as its training loop pickles one
                snapshots.append(pickle.dumps({"G": copy.deepcopy(G).eval().requires_grad_(False),
                                               "D": copy.deepcopy(D).eval().requires_grad_(False),
                                               "G_ema": copy.deepcopy(G_ema)}))
    finally:
        if watcher is not None:
            watcher.close()
    return {"G": G, "D": D, "G_ema": G_ema, "pl_mean": loss.pl_mean, "snapshots": snapshots,
            "rng": torch.get_rng_state(), "opt_g": opt_g}
