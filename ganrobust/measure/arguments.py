"""Odena's three arguments, each a number, for one generator update against one frozen D — at a
checkpoint (:func:`ganrobust.measure.audit.audit_gan`) or at a persisted snapshot of a watched run
(:func:`snapshot_arguments`), where the update is the one training took.

1. *One step*: the flip rate and AAR after k = 1..K replayed generator steps against the frozen
   D_t, with the PGD iterations that reach the same rates (:func:`one_step`).
2. *New batch*: the update's rates on the batch it was optimised on vs fresh held-out latents,
   with the difference's MOVER interval (:func:`new_batch`).
3. *Parameter space*: a parameter step of the update's size ``‖θ' − θ‖₂`` along
   ``∇_θ mean D(G_θ(Z_train))`` against the real update and pixel L2 PGD at the same pixel norm
   (:func:`param_space`).

At a snapshot, step 1 of the replay *is* the recorded update (θ' as persisted); the replay of
that step from the recorded optimizer state and training batch is checked against it
(``replay_check``), and steps 2..K continue from θ' with the optimizer as the replay left it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ganrobust import metrics
from ganrobust.attacks.base import Attack
from ganrobust.config import AuditConfig
from ganrobust.conventions import Direction, Norm
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.measure.audit_context import AuditAttacks
from ganrobust.measure.replay import flat_params, generate, param_space_attack, replay_steps
from ganrobust.measure.update import measure
from ganrobust.scorer import Scorer
from ganrobust.stats import clopper_pearson, difference


def rates(summary: dict[str, Any]) -> dict[str, Any]:
    """The metrics set side by side for Odena's arguments and the robust-D swap (registry view ``compared``)."""
    return {key: summary[key] for key in metrics.keys("compared")}


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a − b`` with its MOVER interval for every metric of the registry view ``paired``."""
    return {key: difference(a[key], b[key]) for key in metrics.keys("paired")}


def one_step(scorer: Scorer, x: torch.Tensor, xs_k: list[torch.Tensor], fake: torch.Tensor, cfg: AuditConfig,
             attack: Attack) -> dict[str, Any]:
    """Argument 1 from the probes' samples before (``x``) and after k = 1..K steps (``xs_k``);
    ``attack`` is the one whose iterations are counted (linf PGD with early stop, by default)."""
    rows = []
    for k, xk in enumerate(xs_k, 1):
        m = measure(scorer, x, xk, eps=cfg.eps, noise_draws=0)
        rows.append({"k": k, "flip_rate": m.summary["flip_rate"], "aar": m.summary["aar"], "linf": m.summary["linf"]})
    # like with like: the AAR (flips with linf <= eps) against PGD held to eps; the flip rate
    # (no norm limit) against PGD held to each sample's own ||p_k||_inf, for k = 1 and k = K
    curve = pgd_iteration_curve(scorer, x, fake, torch.full_like(fake, scorer.bounds.to_data(cfg.eps), dtype=x.dtype),
                                cfg, attack)
    own_budget: list[dict[str, Any]] = []
    for k in sorted({1, len(xs_k)}):
        own = Norm.LINF.of(xs_k[k - 1] - x)
        own_budget.append({"k": k, "pgd": pgd_iteration_curve(scorer, x, fake & (own > 0), own.clamp_min(1e-12), cfg,
                                                               attack, n=int(fake.sum()))})
    by_k = {row["k"]: row["pgd"] for row in own_budget}
    for row in rows:
        row["pgd_iterations_for_same_aar"] = iterations_to_reach(curve, row["aar"])
        row["pgd_iterations_for_same_flip_rate"] = (iterations_to_reach(by_k[row["k"]], row["flip_rate"])
                                                    if row["k"] in by_k else None)
    return {"steps": rows, "pgd": curve, "pgd_own_budget": own_budget}


def new_batch(trained: dict[str, Any], fresh: dict[str, Any], n_trained: int, n_fresh: int) -> dict[str, Any]:
    """Argument 2 from the update's summaries on its own batch and on the held-out probes."""
    return {"trained_batch": rates(trained), "fresh_latents": rates(fresh), "n_trained": n_trained, "n_fresh": n_fresh,
            "difference": differences(trained, fresh)}


def param_space(G: nn.Module, base: Scorer, scorer: Scorer, x: torch.Tensor, Z: torch.Tensor, C: torch.Tensor | None,
                Z_train: torch.Tensor, C_train: torch.Tensor | None, update_size: float, update: dict[str, Any],
                cfg: AuditConfig, call: GanCall, attacks: AuditAttacks) -> dict[str, Any]:
    """Argument 3: the attack ascends on the batch the real update was computed on (Z_train), and
    both are scored on the held-out probes: argument 3 alone, not mixed with argument 2's new batch.
    The pixel-space side is ``attacks.pixel`` within each probe's parameter-attack ‖p‖₂."""
    device = x.device
    attacked = param_space_attack(G, base, Z_train, update_size, cfg.g_bn, call, C_train)
    x_param = generate(attacked, Z, cfg.g_bn, call, C)
    param = measure(scorer, x, x_param, eps=cfg.eps, efficiency=attacks.pixel_efficiency(cfg), seed=cfg.seed)
    l2_param = torch.from_numpy(param.samples["l2"]).to(device)
    x_pix = attacks.pixel.search(scorer, x, l2_param.clamp_min(1e-12), direction=Direction.FAKE_TO_REAL,
                                 generator=torch.Generator(device=device).manual_seed(cfg.seed), active=l2_param > 0,
                                 seed=cfg.seed).x_adv
    pixel = measure(scorer, x, x_pix, eps=cfg.eps, seed=cfg.seed)
    return {"update_size_theta": update_size, "attacked_on": "training batch (Z_train), scored on probes Z",
            "real_update": rates(update), "parameter_attack": rates(param.summary),
            "pixel_pgd_same_norm": rates(pixel.summary)}


def pgd_iteration_curve(scorer: Scorer, x: torch.Tensor, active: torch.Tensor, eps_data: torch.Tensor,
                        cfg: AuditConfig, attack: Attack, n: int | None = None) -> list[dict[str, Any]]:
    """Share of the ``active`` samples that ``attack`` (per-sample budgets ``eps_data``, data
    units) has flipped after t = 0..T iterations (T = ``cfg.pgd_iterations``), over ``n`` samples
    (default: the active ones). The whole scored batch is attacked with a mask, so batch
    statistics stay those that scored it."""
    n = int(active.sum()) if n is None else n
    if not n:
        return []
    found = attack.search(scorer, x, eps_data, direction=Direction.FAKE_TO_REAL, active=active, seed=cfg.seed,
                          generator=torch.Generator(device=x.device).manual_seed(cfg.seed))
    iters, ok = found.iterations, found.crossed & active
    return [{"iterations": t, "flip_rate": clopper_pearson(int((ok & (iters <= t)).sum()), n).to_dict()}
            for t in range(cfg.pgd_iterations + 1)]


def iterations_to_reach(curve: list[dict[str, Any]], target: dict[str, Any]) -> int | None:
    """PGD iterations whose flip rate first reaches ``target``'s value (0 for a zero target;
    None when PGD never reaches it within the curve)."""
    value = target.get("value")
    if not curve or value is None or value != value:
        return None
    if value <= 0:
        return 0
    return next((r["iterations"] for r in curve if r["flip_rate"]["value"] >= value - 1e-12), None)


def replay_deviation(replayed: nn.Module, recorded: nn.Module) -> dict[str, float]:
    """How far the replayed θ' lies from the recorded one: max |Δ| over parameters, and ‖Δ‖₂ / ‖θ'_rec − θ‖₂
    is left to the caller (it knows θ)."""
    a, b = flat_params(replayed), flat_params(recorded)
    return {"max_abs": float((a - b).abs().max()) if a.numel() else 0.0, "l2": float((a - b).norm())}


def snapshot_arguments(G_before: nn.Module, G_after: nn.Module, scorer: Scorer, base: Scorer, x: torch.Tensor,
                       update: dict[str, Any], fake: torch.Tensor, *, Z: torch.Tensor, C: torch.Tensor | None, cfg: AuditConfig,
                       optimizer: tuple[str | None, dict[str, Any]] | None,
                       batch: tuple[torch.Tensor, torch.Tensor | None] | None, call: GanCall = DEFAULT,
                       attacks: AuditAttacks | None = None) -> dict[str, Any]:
    """Odena's arguments at one persisted step: ``x`` = G_before(Z), ``update`` the summary of the
    recorded update on the probes and ``fake`` its fake-classified mask, ``optimizer`` (class, state before the step) and ``batch``
    (z, c of the step) as persisted, None when the run kept none. Arguments that cannot be replayed
    without them are left out and named in ``not_replayed`` with the reason. ``attacks``: what the
    arguments search with (default: :meth:`AuditAttacks.of` ``cfg``)."""
    attacks = attacks or AuditAttacks.of(cfg)
    out: dict[str, Any] = {"loss": cfg.g_loss, "not_replayed": {}}
    theta, theta_next = flat_params(G_before), flat_params(G_after)
    update_size = float((theta_next - theta).norm())
    if batch is None:
        reason = "the run kept no training batch at this step (written before ganrobust kept it, or G's forward " \
                 "was not called with the latents first)"
        out["not_replayed"] = {"one_step": reason, "new_batch": reason, "param_space": reason}
        return out
    z_train, c_train = batch
    z_train = z_train.to(x.device)
    c_train = None if c_train is None else c_train.to(x.device)
    latent_shape = tuple(z_train.shape[1:])
    xs_k = [generate(G_after, Z, cfg.g_bn, call, C)]
    if optimizer is None:
        out["not_replayed"]["one_step"] = ("the run kept no optimizer state at this step (persist_optimizer=False, "
                                           "or written before ganrobust kept it): only k = 1, the recorded update")
    else:
        opt_class, opt_state = optimizer
        replay_cfg = dataclasses.replace(cfg, batch=z_train.shape[0])  # later steps: batches of the step's size
        (replayed,) = replay_steps(G_before, base, opt_state, opt_class, replay_cfg, latent_shape, 1, z_train, call,
                                   c_train)
        dev = replay_deviation(replayed, G_after)
        out["replay_check"] = {**dev, "relative": dev["l2"] / max(update_size, 1e-30),
                               "what": "one step replayed from the recorded optimizer state and training batch vs "
                                       "the recorded G after the step (parameters)"}
        if cfg.k_steps > 1:
            later = replay_steps(G_before, base, opt_state, opt_class, replay_cfg, latent_shape, cfg.k_steps, z_train, call, c_train, continue_from=G_after)
            xs_k += [generate(Gk, Z, cfg.g_bn, call, C) for Gk in later[1:]]
    out["one_step"] = one_step(scorer, x, xs_k, fake, cfg, attacks.iterations)
    xt = generate(G_before, z_train, cfg.g_bn, call, c_train)
    xt_next = generate(G_after, z_train, cfg.g_bn, call, c_train)
    trained = measure(base.on(c_train), xt, xt_next, eps=cfg.eps, efficiency=attacks.pixel_efficiency(cfg),
                      seed=cfg.seed)
    out["new_batch"] = new_batch(trained.summary, update, z_train.shape[0], Z.shape[0])
    out["param_space"] = param_space(G_before, base, scorer, x, Z, C, z_train, c_train, update_size, update, cfg, call,
                                     attacks)
    return out
