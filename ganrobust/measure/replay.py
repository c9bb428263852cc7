"""Replaying generator updates against a frozen D: the next k steps with G's own optimizer, a
parameter-space attack of the update's size, and an adversarially fine-tuned copy of D.
Everything runs on copies; the caller's modules and optimizer state are left as they were."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.config import ROBUST_FINETUNE_BETAS, ROBUST_FINETUNE_LR, ROBUST_FINETUNE_PGD_STEPS, AuditConfig
from ganrobust.conventions import BatchNormMode
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.module_copy import copy_module
from ganrobust.module_state import evaluation_state, fixed_noise
from ganrobust.optimizers import first_line, make_optimizer
from ganrobust.scorer import Scorer
from ganrobust.errors import InputError, param


def generator_loss(kind: str, s: torch.Tensor) -> torch.Tensor:
    """ns: softplus(−s) (non-saturating); bce: −softplus(s) (the saturating minimax loss);
    hinge and wasserstein: −s."""
    if kind == "ns":
        return F.softplus(-s).mean()
    if kind == "bce":
        return -F.softplus(s).mean()
    return -s.mean()


def replay_steps(G: nn.Module, D_scorer: Scorer, opt_state: dict[str, Any] | None, opt_class: str | None,
                 cfg: AuditConfig, latent_shape: tuple[int, ...], k: int, z_first: torch.Tensor,
                 call: GanCall = DEFAULT, c_first: torch.Tensor | None = None,
                 continue_from: nn.Module | None = None) -> list[nn.Module]:
    """k generator steps against the frozen D, on copies: G_1 .. G_k. The first step uses
    ``(z_first, c_first)``, later ones fresh latents (and conditions) from the audit's seed (a
    new batch each step, as in training). G is in train mode, as in a training loop; D scores as
    the scorer says, called as ``call`` says. ``continue_from`` (a persisted step's recorded G
    after the step): its state replaces the first replayed step's, so steps 2..k continue from the
    step training took, with the optimizer moments as the replay left them."""
    work = copy_module(G).train()
    opt = make_optimizer(work, opt_state, opt_class, cfg)
    frozen = D_scorer.frozen().through(call)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    states = []
    device = next(work.parameters()).device
    for i in range(k):
        z, c = (z_first, c_first) if i == 0 else call.sample(cfg.batch, latent_shape, gen, device)
        opt.zero_grad(set_to_none=True)
        on = frozen.on(c)
        with on.session(), torch.enable_grad():
            loss = generator_loss(cfg.g_loss, on.forward(call.generate(work, z, c)))
        loss.backward()
        try:
            opt.step()
        except (KeyError, RuntimeError, TypeError) as err:  # moments of another class (Adamax's exp_inf ...)
            raise InputError(f"G's optimizer state does not fit {type(opt).__name__} ({first_line(err)}); "
                             f"pass {param('g_optimizer')} NAME with its class, or {param('fresh_optimizer')}") from None
        if i == 0 and continue_from is not None:
            work.load_state_dict(continue_from.state_dict())  # in place: the optimizer keeps its parameters
        restore_buffers(work, G)
        states.append(copy_module(work))
    return states


def restore_buffers(work: nn.Module, G: nn.Module) -> None:
    """``work``'s buffers set back to G's: the training-mode forward of a replayed step moves
    BatchNorm running statistics and spectral-norm vectors, which are no part of G's update (with
    them G_1 would differ from G even after a zero step)."""
    with torch.no_grad():
        for (name, mine), theirs in zip(work.named_buffers(), G.buffers()):
            if mine.shape != theirs.shape:
                raise ValueError(f"G's copy changed buffer {name} from {tuple(theirs.shape)} to {tuple(mine.shape)}")
            mine.copy_(theirs)


def generate(G: nn.Module, z: torch.Tensor, bn: BatchNormMode, call: GanCall = DEFAULT,
             c: torch.Tensor | None = None) -> torch.Tensor:
    """G's samples for ``(z, c)``, without a graph, BatchNorm as ``bn`` says (running statistics
    untouched). Whatever G draws inside its forward (per-layer noise, StyleGAN's synthesis) is one
    fixed draw (:func:`~ganrobust.module_state.fixed_noise`), the same for every G: x = G(z) and
    x' = G'(z) differ by G's update alone, and a zero step gives x' == x exactly."""
    with torch.no_grad(), evaluation_state(G, bn), fixed_noise(z.device):
        return call.generate(G, z, c)


def flat_params(G: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in G.parameters()])


def param_space_attack(G: nn.Module, scorer: Scorer, z: torch.Tensor, size: float, bn: BatchNormMode,
                       call: GanCall = DEFAULT, c: torch.Tensor | None = None) -> nn.Module:
    """θ + size·g/‖g‖ with g = ∇_θ mean s(G_θ(z, c)): the steepest parameter step of the given size."""
    attacked = copy_module(G)
    frozen = scorer.frozen().through(call).on(c)
    params = [p for p in attacked.parameters() if p.requires_grad]
    with frozen.session(), torch.enable_grad(), evaluation_state(attacked, bn):
        objective = frozen.forward(call.generate(attacked, z, c)).mean()
        grads = torch.autograd.grad(objective, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    norm = torch.sqrt(sum((g**2).sum() for g in grads)).clamp_min(1e-30)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(g * (size / norm))
    return attacked


def finetune_robust_d(D: nn.Module, G: nn.Module, real: torch.Tensor, *, steps: int, latent_shape: tuple[int, ...],
                      cfg: AuditConfig, bounds: tuple[float, float], lr: float = ROBUST_FINETUNE_LR, call: GanCall = DEFAULT,
                      real_c: torch.Tensor | None = None) -> nn.Module:
    """An adversarially trained copy of D: ``steps`` Adam steps of the PGD robust loss
    (ganrobust.robust, both directions, eps = the audit's eps) against G's samples and ``real``,
    with the run's own D loss (``cfg.d_loss``: a critic keeps the Wasserstein loss and its
    weight clipping ``cfg.d_clip``; it is not turned into a non-saturating classifier)."""
    from ganrobust.robust import RobustDLoss

    robust = copy_module(D).train().requires_grad_(True)
    opt = torch.optim.Adam(robust.parameters(), lr=lr, betas=ROBUST_FINETUNE_BETAS)
    loss_fn = RobustDLoss(method="pgd", eps=cfg.eps, steps=ROBUST_FINETUNE_PGD_STEPS, loss=cfg.d_loss, bounds=bounds, seed=cfg.seed,
                          call=call if call.binds else None)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    device = next(robust.parameters()).device
    for _ in range(steps):
        idx = torch.randint(0, real.shape[0], (cfg.batch,), generator=gen)
        z, c = call.sample(cfg.batch, latent_shape, gen, device)
        fake = generate(G, z, cfg.g_bn, call, c)
        opt.zero_grad(set_to_none=True)
        c_real = None if real_c is None else real_c[idx].to(device)
        loss_fn(robust, real[idx].to(device), fake, c_real, c).backward()
        opt.step()
        if cfg.d_clip is not None:
            with torch.no_grad():
                for p in robust.parameters():
                    p.clamp_(-cfg.d_clip, cfg.d_clip)
    return robust.eval()
