"""The reference trainer: a small GAN loop written like a user's, with the hook on or off.

It is deliberately the loop of pytorch/examples ``dcgan/main.py`` — D kept in train mode
during G's step, the global RNG drawn for latents and batches — so that it exercises the hook
the way real loops do. ``loss="wgan"`` is the original WGAN: ``n_critic`` D steps per G step
and weight clipping after ``opt_d.step()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.config import TRAINER_WATCH, TrainConfig, WatchConfig
from ganrobust.data import Dataset, load_dataset, real_subset
from ganrobust.robust import RobustDLoss, d_loss
from ganrobust.models import (ConditionalDCGANGenerator, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                              MLPGenerator, ProjectionDiscriminator, init_dcgan_weights)
from ganrobust.errors import InputError



@dataclass
class TrainResult:
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data: Dataset
    history: list[dict[str, float]]
    run_dir: Path | None


def num_classes(cfg: TrainConfig, data: Dataset) -> int | None:
    """The number of classes of a conditional run (from the data's labels), else None."""
    if not cfg.conditional:
        return None
    if data.y is None:
        raise InputError(f"a conditional GAN needs labelled data; {data.name!r} has no labels")
    return int(data.y.max()) + 1


def build_models(cfg: TrainConfig, data: Dataset) -> tuple[nn.Module, nn.Module]:
    if cfg.conditional:
        k = num_classes(cfg, data)
        nc = data.x.shape[1]
        G = ConditionalDCGANGenerator(nz=cfg.nz, ngf=cfg.ngf, nc=nc, image_size=cfg.image_size, num_classes=k)
        D = ProjectionDiscriminator(ndf=cfg.ndf, nc=nc, image_size=cfg.image_size, num_classes=k)
        G.apply(init_dcgan_weights)
        return G, D
    if cfg.arch == "dcgan":
        nc = data.x.shape[1]
        G = DCGANGenerator(nz=cfg.nz, ngf=cfg.ngf, nc=nc, image_size=cfg.image_size)
        D = DCGANDiscriminator(ndf=cfg.ndf, nc=nc, image_size=cfg.image_size, spectral_norm=cfg.spectral_norm)
        G.apply(init_dcgan_weights)
        D.apply(init_dcgan_weights)
    else:
        dim = data.x[0].numel()
        G = MLPGenerator(nz=cfg.nz, hidden=128, dim=dim, bound=max(abs(b) for b in data.bounds))
        D = MLPDiscriminator(dim=dim, hidden=128, spectral_norm=cfg.spectral_norm)
    return G, D


def g_loss(loss: str, s_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-s_fake).mean() if loss == "ns" else -s_fake.mean()


DLossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def train(
    cfg: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    watch_config: WatchConfig | None = None,
    data: Dataset | None = None,
    d_loss_fn: DLossFn | None = None,
    progress: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a GAN; with ``run_dir`` the loop runs under ``ganrobust.watch``.

    ``d_loss_fn(D, real, fake) -> loss`` replaces D's loss (adversarial training, R1, GP);
    it is called with D in train mode, exactly where the standard loss would be.
    """
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    data = data or load_dataset(cfg.data, n=cfg.n_data, seed=cfg.seed, size=cfg.image_size)
    G, D = build_models(cfg, data)
    classes = num_classes(cfg, data)
    if d_loss_fn is None and cfg.d_training != "standard":
        d_loss_fn = RobustDLoss(method=cfg.d_training, eps=cfg.d_eps, steps=cfg.d_steps, gamma=cfg.d_gamma,
                                loss=cfg.loss, bounds=data.bounds, seed=cfg.seed, precision=cfg.precision)
    G.to(device)
    D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    latent = (cfg.nz, 1, 1) if cfg.arch == "dcgan" else (cfg.nz,)

    watcher = None
    if run_dir is not None:
        from ganrobust.hook import watch

        wcfg = (watch_config or TRAINER_WATCH).replace(bounds=data.bounds)
        if cfg.loss == "wgan":
            wcfg = wcfg.replace(kind="critic")
        # a seeded, class-stratified draw: data.x[:n] of class-sorted data would calibrate on the first classes
        real_probe = real_subset(data.x, wcfg.n_probes, seed=cfg.seed, labels=data.y)[0].to(device)
        watcher = watch(G, D, run_dir, config=wcfg, real=real_probe if cfg.loss == "wgan" else None,
                        num_classes=classes)
        watcher.writer.write_manifest(train_config=cfg.to_dict(), data={"name": data.name, "n": len(data)})

    history: list[dict[str, float]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="training", unit="step", dynamic_ncols=True)
    error: str | None = None
    try:
        G.train()
        D.train()
        for step in range(cfg.steps):
            loss_d, loss_g = _step(cfg, G, D, opt_g, opt_d, data, classes, latent, device, d_loss_fn)
            stats = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
            if not (math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])):
                raise FloatingPointError(f"training diverged at step {step + 1}: {stats}")
            history.append(stats)
            if on_step is not None:
                on_step(step + 1, stats)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss_d=f"{stats['loss_d']:.3f}", loss_g=f"{stats['loss_g']:.3f}")
    except BaseException as err:
        error = f"{type(err).__name__}: {err}"
        raise
    finally:
        if bar is not None:
            bar.close()
        if watcher is not None:
            watcher.close(error=error)
    return TrainResult(G, D, opt_g, opt_d, data, history, None if watcher is None else watcher.run_dir)


def _step(cfg: TrainConfig, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
          data: Dataset, classes: int | None, latent: tuple[int, ...], device: torch.device, d_loss_fn: Any
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One generator step after ``n_critic`` D steps. With ``classes`` (a class-conditional GAN) real
    batches keep their labels and fake ones draw labels uniformly: D(x, y), G(z, y); without, the
    same draws as ``data.batch`` and no label is drawn."""
    def labels() -> tuple[torch.Tensor, ...]:
        return () if classes is None else (torch.randint(0, classes, (cfg.batch,), device=device),)

    for _ in range(cfg.n_critic):
        idx = torch.randint(0, len(data), (cfg.batch,))
        real = data.x[idx].to(device)
        y_real = () if classes is None else (data.y[idx].to(device),)  # type: ignore[index]
        z = torch.randn((cfg.batch,) + latent, device=device)
        y_fake = labels()
        fake = G(z, *y_fake).detach()
        opt_d.zero_grad(set_to_none=True)
        loss_d = (d_loss(cfg.loss, D(real, *y_real), D(fake, *y_fake)) if d_loss_fn is None
                  else d_loss_fn(D, real, fake, *y_real, *y_fake))
        loss_d.backward()
        opt_d.step()
        if cfg.loss == "wgan":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-cfg.clip, cfg.clip)
    z = torch.randn((cfg.batch,) + latent, device=device)
    y = labels()
    opt_g.zero_grad(set_to_none=True)
    loss_g = g_loss(cfg.loss, D(G(z, *y), *y))  # D stays in train mode, as in pytorch/examples
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g
