"""Offline audit of a checkpoint: replay the next generator update, test Odena's three
arguments, sweep D's robustness. Pure computation: returns the report's measured sections, writes nothing.

The audit is its context built once (:mod:`ganrobust.measure.audit_context`: probes, the scorer
that calibrates and conditions, the attacks) and the registered sections run over it
(:mod:`ganrobust.measure.sections`). Odena's arguments why accidental attacks may be rare, each
turned into a number:

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
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.config import AUDIT_MIN_NORM_BISECTIONS, AuditConfig, ScoreSpec
from ganrobust.conventions import Norm
from ganrobust.data import real_subset
from ganrobust.errors import param
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.measure import arguments
from ganrobust.measure.audit_context import AuditAttacks, build_context
from ganrobust.measure.replay import generate
from ganrobust.measure.sections import SECTIONS, Section, run_sections
from ganrobust.measure.update import measure
from ganrobust.module_state import preserved_rng
from ganrobust.scorer import Scorer, with_threshold


def audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: ScoreSpec | dict[str, Any], latent_shape: tuple[int, ...],
              opt_state: dict[str, Any] | None = None, opt_class: str | None = None, cfg: AuditConfig = AuditConfig(),
              real: torch.Tensor | None = None, progress: Callable[[str], None] | None = None,
              robust_d_steps: int = 0, call: GanCall = DEFAULT, real_labels: torch.Tensor | None = None,
              sections: Sequence[Section] | None = None, attacks: AuditAttacks | None = None) -> dict[str, Any]:
    """The whole audit of one (G, D) pair; returns the report's measured sections.

    ``scorer_options``: how D is scored (a :class:`~ganrobust.config.ScoreSpec`, or its fields as a
    dict). ``call`` says how to draw ``(z, c)`` and call G and D (conditional GANs); ``real_labels``
    (N,) are the class labels of ``real``, which a conditional D needs to score real samples.
    ``sections`` (default: the registered ones) run in order over one context; ``attacks``
    (default: :meth:`AuditAttacks.of` ``cfg``) are the attacks they search with. ``progress`` gets
    each running section's title (and, with a ``plan`` method, their number first)."""
    # G's forward in the replay may draw (dropout, noise layers): seed it, in a fork, so the
    # audit is reproducible and the caller's global RNG is left exactly as it was
    device = next(G.parameters()).device
    with preserved_rng(device):
        torch.manual_seed(cfg.seed)
        ctx = build_context(G, D, spec=ScoreSpec.coerce(scorer_options), latent_shape=latent_shape, cfg=cfg, call=call,
                            attacks=attacks or AuditAttacks.of(cfg), real=real, real_labels=real_labels,
                            opt_state=opt_state, opt_class=opt_class, robust_d_steps=robust_d_steps)
        return run_sections(ctx, SECTIONS if sections is None else sections, progress)


def audit_snapshot(G_before: nn.Module, G_after: nn.Module, D: nn.Module, *, scorer_options: ScoreSpec | dict[str, Any],
                   Z: torch.Tensor, cfg: AuditConfig, real: torch.Tensor | None = None, C: torch.Tensor | None = None,
                   call: GanCall = DEFAULT, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One persisted step of a watched run: the exact recorded update against the exact D
    snapshot, and D's linf fake->real robustness curve at that step. A critic's threshold is
    calibrated on this snapshot (``real`` and the step's own samples), never carried over.

    ``inputs`` (``{"optimizer": (class, state) | None, "batch": (z, c) | None, "seed": int}``, what
    the run kept of the step): Odena's three arguments at this step too
    (:func:`ganrobust.measure.arguments.snapshot_arguments`, random draws from ``seed``)."""
    spec = ScoreSpec.coerce(scorer_options)
    x, x_next = generate(G_before, Z, cfg.g_bn, call, C), generate(G_after, Z, cfg.g_bn, call, C)
    base = with_threshold(  # a critic's threshold at this snapshot
        Scorer.of(D, spec, call), None if real is None else real_subset(real, Z.shape[0], seed=cfg.seed)[0], x,
        tau_given=spec.tau_given,
        missing=f"a critic D needs real samples to calibrate tau at each snapshot: pass {param('real')}")
    scorer = base.on(C)
    attacks = dataclasses.replace(AuditAttacks.of(cfg), min_norm=MinimumNormAttack(
        norm=Norm.LINF, bisection_steps=AUDIT_MIN_NORM_BISECTIONS, precision=cfg.precision))
    m = measure(scorer, x, x_next, eps=cfg.eps, efficiency=attacks.efficiency, min_norm=attacks.min_norm,
                min_norm_probes=cfg.min_norm_probes, seed=cfg.seed)
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                             precision=cfg.precision)
    out = {"update": m.summary, "robustness": curve.rows(), "median_eps_star": curve.median_eps_star.to_dict(),
           **({"diagnostics": [d.to_dict() for d in m.diagnostics]} if m.diagnostics else {})}
    if inputs is not None:
        fake = torch.from_numpy(m.samples["fake"]).to(x.device)
        out["odena"] = arguments.snapshot_arguments(
            G_before, G_after, scorer, base, x, m.summary, fake, Z=Z, C=C,
            cfg=dataclasses.replace(cfg, seed=inputs["seed"]), optimizer=inputs.get("optimizer"),
            batch=inputs.get("batch"), call=call, attacks=attacks)
    return out
