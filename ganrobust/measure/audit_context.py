"""What every section of an audit shares, built once (StyleGAN2-ADA's ``metric_main`` options
object): the GAN and its adapter, the probes, the real samples, the scorer factory that
calibrates and conditions, and the attacks the sections search with. The replayed generator
update and its measurement are computed on first use, by the first section that needs them,
and shared by every later one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganrobust.attacks.base import Attack
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.projected_gradient_descent import ProjectedGradientDescentAttack
from ganrobust.config import AUDIT_MIN_NORM_BISECTIONS, AuditConfig, ScoreSpec
from ganrobust.conventions import Norm
from ganrobust.data import real_subset
from ganrobust.errors import InputError, param
from ganrobust.gan_call import GanCall
from ganrobust.measure.replay import flat_params, generate, replay_steps
from ganrobust.measure.update import Measurement, efficiency_pgd, measure
from ganrobust.scorer import Scorer, with_threshold


@dataclass(frozen=True)
class AuditAttacks:
    """The attacks an audit searches with; any :class:`~ganrobust.attacks.base.Attack` fits."""

    #: eps* of the update's probes (and the robust copy's): linf minimum norm, bisection refined
    min_norm: Attack
    #: s_pgd of the update measurements on the probes, in the audit's search precision (None: none)
    efficiency: Attack | None
    #: the float32 pixel attack within each sample's own ‖p‖₂: s_pgd of the other measured updates,
    #: argument 3's pixel-space PGD, the perturbation images
    pixel: Attack
    #: argument 1: the attack whose iterations are counted until the decision flips (early stop)
    iterations: Attack

    @classmethod
    def of(cls, cfg: AuditConfig) -> "AuditAttacks":
        """The audit's attacks as ``cfg`` configures them."""
        steps = max(cfg.efficiency_steps, 1)
        return cls(
            min_norm=MinimumNormAttack(norm=Norm.LINF, bisection_steps=AUDIT_MIN_NORM_BISECTIONS,
                                       precision=cfg.precision, precision_check=cfg.precision_check),
            efficiency=efficiency_pgd(cfg.efficiency_steps, cfg.precision) if cfg.efficiency_steps > 0 else None,
            pixel=efficiency_pgd(steps),
            iterations=ProjectedGradientDescentAttack(norm=Norm.LINF, steps=cfg.pgd_iterations, rel_stepsize=0.1,
                                                      random_start=False, early_stop=True))

    def pixel_efficiency(self, cfg: AuditConfig) -> Attack | None:
        """The float32 efficiency attack of the measured updates other than the probes' own."""
        return self.pixel if cfg.efficiency_steps > 0 else None


@dataclass
class AuditContext:
    """One (G, D) audit's shared state. ``base`` is D's scorer, calibrated on this snapshot (a
    critic's threshold, :func:`~ganrobust.scorer.with_threshold`) and called through ``call``;
    ``scorer`` is it bound to the probes' conditions (``base.on(C)``)."""

    G: nn.Module
    D: nn.Module
    call: GanCall
    spec: ScoreSpec
    cfg: AuditConfig
    attacks: AuditAttacks
    latent_shape: tuple[int, ...]
    generator: torch.Generator  # the audit's seeded draws: probes, training batch, then interpolates
    Z: torch.Tensor
    C: torch.Tensor | None
    Z_train: torch.Tensor
    C_train: torch.Tensor | None
    x: torch.Tensor
    real: torch.Tensor | None  # every real sample the caller gave (the robust copy trains on them)
    real_labels: torch.Tensor | None
    real_c: torch.Tensor | None  # conditions of ``real`` (conditional GANs)
    real_probe: torch.Tensor | None  # the seeded draw of ``real`` that is scored
    real_probe_c: torch.Tensor | None
    real_pick: torch.Tensor | None  # which rows of ``real`` were drawn
    base: Scorer
    scorer: Scorer
    opt_state: dict[str, Any] | None
    opt_class: str | None
    robust_d_steps: int
    extra: dict[str, Any] = field(default_factory=dict)  # what a caller's own sections need

    @property
    def device(self) -> torch.device:
        return self.x.device

    def scorer_for(self, D: nn.Module) -> Scorer:
        """The scorer of another D over the same probes (the robust copy): built from the spec,
        called through the adapter, bound to the probes' conditions, its critic threshold
        calibrated on its own scores."""
        return with_threshold(Scorer.of(D, self.spec, self.call).on(self.C), self.real_probe, self.x,
                              tau_given=self.spec.tau_given)

    def generate(self, G: nn.Module, Z: torch.Tensor, C: torch.Tensor | None) -> torch.Tensor:
        return generate(G, Z, self.cfg.g_bn, self.call, C)

    @functools.cached_property
    def steps(self) -> list[nn.Module]:
        """G after k = 1..K replayed generator steps against the frozen D (the first on ``Z_train``)."""
        return replay_steps(self.G, self.base, self.opt_state, self.opt_class, self.cfg, self.latent_shape,
                            self.cfg.k_steps, self.Z_train, self.call, self.C_train)

    @functools.cached_property
    def x_next(self) -> torch.Tensor:
        """The probes after the replayed update."""
        return self.generate(self.steps[0], self.Z, self.C)

    @functools.cached_property
    def update_size(self) -> float:
        """‖θ' − θ‖₂ of the replayed update."""
        return float((flat_params(self.steps[0]) - flat_params(self.G)).norm())

    @functools.cached_property
    def update(self) -> Measurement:
        """The replayed update measured on the probes (eps* included)."""
        return self.measure(self.scorer, self.x, self.x_next)

    def measure(self, scorer: Scorer, x: torch.Tensor, x_next: torch.Tensor) -> Measurement:
        """An update on the probes against ``scorer``, with eps* and the search-precision efficiency."""
        cfg = self.cfg
        return measure(scorer, x, x_next, eps=cfg.eps, efficiency=self.attacks.efficiency,
                       min_norm=self.attacks.min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed)


def build_context(G: nn.Module, D: nn.Module, *, spec: ScoreSpec, latent_shape: tuple[int, ...], cfg: AuditConfig,
                  call: GanCall, attacks: AuditAttacks, real: torch.Tensor | None, real_labels: torch.Tensor | None,
                  opt_state: dict[str, Any] | None, opt_class: str | None, robust_d_steps: int) -> AuditContext:
    """The context of one audit: probes and training batch drawn from ``cfg.seed`` (``z`` then ``c``
    per draw, as every adapter draws), the real samples scored (a seeded draw, stratified by label,
    never ``real[:n]`` of class-sorted data), and D's calibrated scorer. InputError for a conditional
    GAN without real labels, or a conditional critic."""
    gen = torch.Generator().manual_seed(cfg.seed)
    device = next(G.parameters()).device
    Z, C = call.sample(cfg.n_probes, latent_shape, gen, device)
    Z_train, C_train = call.sample(cfg.batch, latent_shape, gen, device)
    real_c = None
    if call.conditional and real is not None:
        if real_labels is None:
            raise InputError(f"a conditional D scores real samples with their labels, and {param('real')} has none; pass "
                             "labelled data (an image folder with one sub-folder per class, digits, shapes, an .npz "
                             "with y)")
        real_c = call.condition_of_labels(real_labels).to(device)
    real_probe = real_probe_c = pick = None
    if real is not None:
        real_probe, _, pick = real_subset(real, cfg.n_probes, seed=cfg.seed, labels=real_labels)
        real_probe = real_probe.to(device)
        real_probe_c = None if real_c is None else real_c[pick.to(real_c.device)]
    if call.conditional and spec.critic and not spec.tau_given:
        raise InputError("a conditional critic (WGAN) D is not supported: its threshold would be calibrated on real "
                         "samples scored with their labels")
    x = generate(G, Z, cfg.g_bn, call, C)
    base = with_threshold(Scorer.of(D, spec, call), real_probe, x, tau_given=spec.tau_given)
    return AuditContext(G=G, D=D, call=call, spec=spec, cfg=cfg, attacks=attacks, latent_shape=latent_shape,
                        generator=gen, Z=Z, C=C, Z_train=Z_train, C_train=C_train, x=x, real=real,
                        real_labels=real_labels, real_c=real_c, real_probe=real_probe, real_probe_c=real_probe_c,
                        real_pick=pick, base=base, scorer=base.on(C), opt_state=opt_state, opt_class=opt_class,
                        robust_d_steps=robust_d_steps)
