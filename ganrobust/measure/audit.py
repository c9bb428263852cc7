"""Offline audit of a checkpoint: replay the next generator update, test Odena's three
arguments, sweep D's robustness. Pure computation: returns the report's measured sections, writes nothing.

Odena's arguments why accidental attacks may be rare, each turned into a number:

1. *One step* — G takes one gradient step before D moves, attacks take tens. Replay
   k = 1..K generator steps against the frozen D_t and set each against PGD under the *same*
   budget: the AAR after k steps (flips with ‖p‖∞ <= eps) against linf PGD held to eps, and
   the flip rate after k steps (no norm limit) against linf PGD held to each sample's own
   ‖p_k‖∞ (for k = 1 and k = K) — the iterations PGD needs to match each.
2. *New batch* — each G step uses a new batch of z. Compare the update's flip rate and AAR on
   the batch it was optimised on with fresh held-out latents (the difference with its MOVER
   interval decides "significant").
3. *Parameter space* — G moves θ, not pixels. A parameter-space attack (one step of size
   ``‖θ' − θ‖₂`` along ``∇_θ mean D(G_θ(Z_train))``, ascending on the *training batch* as the
   real update did, scored on the held-out probes) against the real update and against
   pixel-space L2 PGD at the same pixel norm.

Under batch statistics (``bn='batch'``) every attack runs on the whole scored batch with an
``active`` mask, so each sample's clean score inside an attack is the score that classified it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from ganrobust import metrics
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.precision import precision_record
from ganrobust.attacks.projected_gradient_descent import pgd
from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.config import AUDIT_MIN_NORM_BISECTIONS, AuditConfig
from ganrobust.conventions import Direction, Norm, ScoreKind
from ganrobust.data import real_subset
from ganrobust.diagnostics import Diagnostic, diagnose_scorer
from ganrobust.measure import arguments
from ganrobust.measure.replay import flat_params, finetune_robust_d, generate, replay_steps
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.measure.update import by_class, measure_update
from ganrobust.module_state import preserved_rng
from ganrobust.scorer import Scorer, with_threshold
from ganrobust.correlated import paired_share_difference
from ganrobust.errors import InputError, param
from ganrobust.stats import clopper_pearson, difference, median_ci, significant



def _paired_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a − b`` over the same probes and update scored by two Ds (per-sample arrays ``a``, ``b``),
    with Newcombe's paired interval, for every share of the registry view ``paired``: each side's
    share is over its own D's fake-classified probes."""
    out: dict[str, Any] = {}
    for m in metrics.view("paired"):
        fa, fb = a["fake"].astype(bool), b["fake"].astype(bool)
        d = paired_share_difference(a[m.field].astype(float), fa, b[m.field].astype(float), fb)
        out[m.key] = {**d.to_dict(), "method": "Newcombe paired (same probes, two Ds)", "significant": significant(d)}
    return out


def audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
              opt_state: dict[str, Any] | None = None, opt_class: str | None = None, cfg: AuditConfig = AuditConfig(),
              real: torch.Tensor | None = None, progress: Callable[[str], None] | None = None,
              robust_d_steps: int = 0, call: GanCall = DEFAULT, real_labels: torch.Tensor | None = None
              ) -> dict[str, Any]:
    """The whole audit of one (G, D) pair; returns the report's measured sections.

    ``call`` says how to draw ``(z, c)`` and call G and D (conditional GANs); ``real_labels``
    (N,) are the class labels of ``real``, which a conditional D needs to score real samples."""
    # G's forward in the replay may draw (dropout, noise layers): seed it, in a fork, so the
    # audit is reproducible and the caller's global RNG is left exactly as it was
    device = next(G.parameters()).device
    with preserved_rng(device):
        torch.manual_seed(cfg.seed)
        return _audit_gan(G, D, scorer_options=scorer_options, latent_shape=latent_shape, opt_state=opt_state,
                          opt_class=opt_class, cfg=cfg, real=real, progress=progress, robust_d_steps=robust_d_steps,
                          call=call, real_labels=real_labels)


def _audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
               opt_state: dict[str, Any] | None, opt_class: str | None, cfg: AuditConfig, real: torch.Tensor | None,
               progress: Callable[[str], None] | None, robust_d_steps: int, call: GanCall = DEFAULT,
               real_labels: torch.Tensor | None = None) -> dict[str, Any]:
    tick = progress or (lambda _msg: None)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = next(G.parameters()).device
    # every metric is per (z, c) probe; the default adapter draws exactly z ~ N(0, I) as before
    Z, C = call.sample(cfg.n_probes, latent_shape, gen, device)
    Z_train, C_train = call.sample(cfg.batch, latent_shape, gen, device)
    cond = call.conditional
    bind = call.binds  # D called through the adapter (conditions, or a custom call)
    scorer = Scorer(D, **scorer_options)
    real_c: torch.Tensor | None = None
    if cond and real is not None:
        if real_labels is None:
            raise InputError(f"a conditional D scores real samples with their labels, and {param('real')} has none; pass "
                             "labelled data (an image folder with one sub-folder per class, digits, shapes, an .npz "
                             "with y)")
        real_c = call.condition_of_labels(real_labels).to(device)
    # the real samples the audit scores: a seeded draw (stratified by label), never real[:n] of class-sorted data
    real_probe, real_probe_c = None, None
    if real is not None:
        real_probe, _, pick = real_subset(real, cfg.n_probes, seed=cfg.seed, labels=real_labels)
        real_probe = real_probe.to(device)
        real_probe_c = None if real_c is None else real_c[pick.to(real_c.device)]
    if cond and scorer_options.get("kind") == "critic" and scorer_options.get("tau") is None:
        raise InputError("a conditional critic (WGAN) D is not supported: its threshold would be calibrated on real "
                         "samples scored with their labels")
    x = generate(G, Z, cfg.g_bn, call, C)
    scorer = with_threshold(scorer, real_probe, x, tau_given=scorer_options.get("tau") is not None)
    base = scorer  # D(x) scorer; below, scorers bound to the conditions of the batch they score
    if bind:
        scorer = base.conditioned(C, call)
    min_norm = MinimumNormAttack(norm=Norm.LINF, bisection_steps=AUDIT_MIN_NORM_BISECTIONS, precision=cfg.precision,
                                 precision_check=cfg.precision_check)

    tick("replaying the next generator update")
    steps = replay_steps(G, base, opt_state, opt_class, cfg, latent_shape, cfg.k_steps, Z_train, call, C_train)
    theta, theta_next = flat_params(G), flat_params(steps[0])
    update_size = float((theta_next - theta).norm())
    x_next = generate(steps[0], Z, cfg.g_bn, call, C)
    tick("measuring the update")
    update = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                            min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed,
                            precision=cfg.precision)

    tick("argument 1: one step")
    fake_t = torch.from_numpy(update.samples["fake"]).to(device)
    odena_one_step = arguments.one_step(scorer, x, [generate(Gk, Z, cfg.g_bn, call, C) for Gk in steps], fake_t, cfg)

    tick("argument 2: new batch")
    xt, xt_next = generate(G, Z_train, cfg.g_bn, call, C_train), generate(steps[0], Z_train, cfg.g_bn, call, C_train)
    trained_on = measure_update(base.conditioned(C_train, call) if bind else scorer, xt, xt_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps, seed=cfg.seed)
    new_batch = arguments.new_batch(trained_on.summary, update.summary, cfg.batch, cfg.n_probes)

    tick("argument 3: parameter space")
    param_space = arguments.param_space(G, base, scorer, x, Z, C, Z_train, C_train, update_size, update.summary, cfg,
                                        call)

    tick("robustness sweep")
    robustness: list[dict[str, Any]] = []
    eps_star: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    real_scorer = base.conditioned(real_probe_c, call) if bind else scorer
    sets = [("fake->real", x, scorer)] + ([("real->fake", real_probe, real_scorer)]
                                          if real is not None else [])
    for direction, xs, sc in sets:
        for norm, grid in (("linf", cfg.eps_grid), ("l2", tuple(e * cfg.l2_scale for e in cfg.eps_grid))):
            curve = robustness_curve(sc, xs, grid, norm=norm, direction=direction, seed=cfg.seed,
                                     precision=cfg.precision)
            robustness += curve.rows()
            eps_star[f"{norm} {direction}"] = curve.median_eps_star.to_dict()
            clean[direction] = curve.clean_accuracy.to_dict()
    diagnostics = [d.to_dict() for d in diagnose_scorer(scorer, x)] + [d.to_dict() for d in update.diagnostics]
    if real is not None and clean.get("real->fake", {}).get("value", 1.0) < 0.5:
        diagnostics.append(Diagnostic.make(
            "real-called-fake", f"D calls {1 - clean['real->fake']['value']:.0%} of real samples fake "
                                f"(bn={scorer.bn.value})").to_dict())
    gradients = {"fake": _grad_norms(scorer, x)}
    if real is not None:
        r = real_probe
        k = min(len(r), len(x))
        alpha = torch.rand((k,) + (1,) * (x.dim() - 1), generator=gen).to(device)
        gradients["real"] = _grad_norms(real_scorer, r)
        # interpolates are scored with the real sample's condition
        mid_scorer = real_scorer.rows(torch.arange(k, device=device)) if cond else scorer
        gradients["interpolated"] = _grad_norms(mid_scorer, alpha * r[:k] + (1 - alpha) * x[:k])

    robust_d = None
    if robust_d_steps > 0:
        if real is None:
            raise InputError(f"{param('robust_d_steps')} needs real samples to train on: pass {param('real')}")
        tick("fine-tuning a robust D")
        D_rob = finetune_robust_d(D, G, real, steps=robust_d_steps, latent_shape=latent_shape, cfg=cfg,
                                  bounds=(scorer.bounds.lo, scorer.bounds.hi), call=call, real_c=real_c)
        rob_scorer = Scorer(D_rob, **scorer_options)
        if bind:
            rob_scorer = rob_scorer.conditioned(C, call)
        # a critic's threshold belongs to its own snapshot: calibrated on the robust copy
        rob_scorer = with_threshold(rob_scorer, real_probe, x, tau_given=scorer_options.get("tau") is not None)
        same = measure_update(rob_scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                              min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed,
                              precision=cfg.precision)
        rows = []
        for which, sc in (("standard", scorer), ("robust", rob_scorer)):
            for r in robustness_curve(sc, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                                      precision=cfg.precision).rows():
                rows.append({**r, "discriminator": which})
        accuracy = {which: clopper_pearson(int((sc.conditioned(real_probe_c, call).score(real_probe) >= sc.tau).sum())
                                  if bind else int((sc.score(real_probe) >= sc.tau).sum()),
                                  real_probe.shape[0]).to_dict()
                    for which, sc in (("standard", scorer), ("robust", rob_scorer))}
        robust_d = {"steps": robust_d_steps, "real_called_real": accuracy,
                    "method": f"pgd linf eps={cfg.eps:.4g}, 5 steps, both directions, {cfg.d_loss} loss",
                    "tau": {"standard": scorer.tau, "robust": rob_scorer.tau},
                    "standard": arguments.rates(update.summary), "robust": arguments.rates(same.summary), "robustness": rows,
                    "difference": _paired_differences(same.samples, update.samples)}

    labels = call.labels(C)
    conditions: dict[str, Any] = {}
    if cond:
        conditions = {"gan_call": call.describe()}
        if labels is not None:
            update.samples["label"] = labels.cpu().numpy()
            conditions["by_class"] = by_class(update.samples, call.classes)
    real_record = None
    if real_probe is not None:  # which real samples were scored: a seeded draw, stratified by label when known
        counts = None if real_labels is None else torch.bincount(
            real_labels.cpu()[pick.cpu()].long(), minlength=int(real_labels.max()) + 1).tolist()
        real_record = {"n": int(real_probe.shape[0]), "of": int(real.shape[0]), "class_counts": counts,
                       "draw": f"seeded permutation (seed {cfg.seed})" + (", stratified by label" if counts else "")}
    return {
        **conditions,
        **({"real_samples": real_record} if real_record else {}),
        "precision": precision_record(cfg.precision, x.device, scorer=scorer, x=x),
        "batch_coupling": scorer.coupling_record(),  # measured on the probes (ganrobust.model_checks)
        "robust_d": robust_d,
        "summary": {**{key: update.summary[key] for key in metrics.keys("summary")},
                    "n": update.summary["n"], "n_fake": update.summary["n_fake"], "tau": scorer.tau},
        "update": update.summary,
        "odena": {"one_step": odena_one_step, "new_batch": new_batch, "param_space": param_space},
        "robustness": robustness,
        "robustness_summary": {"median_eps_star": eps_star, "clean_accuracy": clean, "input_gradient_norm": gradients},
        "diagnostics": diagnostics,
        "samples": update.samples,
        "images": {"x": call.export(x[:8]).cpu(), "x_next": call.export(x_next[:8]).cpu(),  # as images leave the tool
                   "x_pgd": call.export(_pgd_within(scorer, x, x_next, cfg, first=8)[:8]).cpu()},
    }


def _pgd_within(scorer: Scorer, x: torch.Tensor, x_next: torch.Tensor, cfg: AuditConfig, first: int) -> torch.Tensor:
    """L2 PGD within each update's own ‖p‖₂ for the ``first`` probes (attacked inside the whole
    scored batch): the perturbation the update could have been."""
    l2 = Norm.L2.of(x_next - x)
    out, _, _ = pgd(scorer.frozen(), x, l2.clamp_min(1e-12), norm=Norm.L2, direction=Direction.FAKE_TO_REAL,
                    steps=max(cfg.efficiency_steps, 1), rel_stepsize=2.5 / max(cfg.efficiency_steps, 1),
                    random_start=False, early_stop=False, generator=torch.Generator(device=x.device).manual_seed(cfg.seed),
                    active=(l2 > 0) & (torch.arange(x.shape[0], device=x.device) < first))
    return out


def _grad_norms(scorer: Scorer, x: torch.Tensor) -> dict[str, float | int]:
    _, _, g = scorer.margin_grad(x, Direction.FAKE_TO_REAL)
    return median_ci(g.reshape(g.shape[0], -1).norm(dim=1).cpu().numpy()).to_dict()


def audit_snapshot(G_before: nn.Module, G_after: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any],
                   Z: torch.Tensor, cfg: AuditConfig, real: torch.Tensor | None = None, C: torch.Tensor | None = None,
                   call: GanCall = DEFAULT, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One persisted step of a watched run: the exact recorded update against the exact D
    snapshot, and D's linf fake->real robustness curve at that step. A critic's threshold is
    calibrated on this snapshot (``real`` and the step's own samples), never carried over.

    ``inputs`` (``{"optimizer": (class, state) | None, "batch": (z, c) | None, "seed": int}``, what
    the run kept of the step): Odena's three arguments at this step too
    (:func:`ganrobust.measure.arguments.snapshot_arguments`, random draws from ``seed``)."""
    base = scorer = Scorer(D, **scorer_options)
    x, x_next = generate(G_before, Z, cfg.g_bn, call, C), generate(G_after, Z, cfg.g_bn, call, C)
    if scorer.kind is ScoreKind.CRITIC and scorer_options.get("tau") is None:  # its threshold at this snapshot
        base = scorer = with_threshold(
            scorer, None if real is None else real_subset(real, Z.shape[0], seed=cfg.seed)[0], x, tau_given=False,
            missing=f"a critic D needs real samples to calibrate tau at each snapshot: pass {param('real')}")
    if call.binds:
        scorer = scorer.conditioned(C, call)
    m = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                       min_norm=MinimumNormAttack(norm=Norm.LINF, bisection_steps=AUDIT_MIN_NORM_BISECTIONS, precision=cfg.precision),
                       min_norm_probes=cfg.min_norm_probes, seed=cfg.seed, precision=cfg.precision)
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                             precision=cfg.precision)
    out = {"update": m.summary, "robustness": curve.rows(), "median_eps_star": curve.median_eps_star.to_dict(),
           **({"diagnostics": [d.to_dict() for d in m.diagnostics]} if m.diagnostics else {})}
    if inputs is not None:
        fake = torch.from_numpy(m.samples["fake"]).to(x.device)
        out["odena"] = arguments.snapshot_arguments(
            G_before, G_after, scorer, base, x, m.summary, fake, Z=Z, C=C,
            cfg=dataclasses.replace(cfg, seed=inputs["seed"]), optimizer=inputs.get("optimizer"),
            batch=inputs.get("batch"), call=call)
    return out
