"""One source of defaults (torch-fidelity's ``defaults.py`` pattern): every config of the hook,
the audit, the comparison, the trainer and the demo, and the constants they share. The library
reads these dataclasses; every CLI option takes its ``default=`` from a field here
(tests/test_defaults.py checks each one). Configs are frozen; change one with
``dataclasses.replace`` (or :meth:`WatchConfig.replace`, which names unknown options).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ganrobust.conventions import BatchNormMode, Norm, Precision, ScoreKind
from ganrobust.errors import InputError, param

#: Odena's "small": a linf budget as a fraction of the data range (8/255 of [0, 1] images)
EPS: float = 8 / 255
#: the linf budgets (fractions of the data range) of every robustness curve: audit and compare
EPS_GRID: tuple[float, ...] = (0.5 / 255, 1 / 255, 2 / 255, 4 / 255, EPS, 16 / 255)
#: precision of attack *searches* (fp32 | bf16 | fp16 | auto: timed on the model, bf16/fp16 only where
#: faster by ganrobust.attacks.precision.SPEEDUP_MARGIN). Verdicts are verified in float32 whatever
#: it is. fp32 by default: bf16 agrees within 1 point (benchmark D, the sample's batch-statistics D)
#: but was slower than float32 on the AVX512 + avx512_bf16/fp16 host that measured it (README, "Precision").
PRECISION: str = "fp32"
DEVICE: str = "cpu"
SEED: int = 0

#: seconds any torch.distributed collective may wait (``ganrobust.distributed``): a rank that died
#: without reaching a gather makes the others fail after at most this long; overridden by the
#: ``GANROBUST_DIST_TIMEOUT`` environment variable (seconds) for sharded CLI runs
DIST_TIMEOUT_S: float = 600.0

#: bisection steps of the minimum-norm eps*: the hook's (every min_norm_every measured steps, on its
#: critical path) and the audit's (once per audit or snapshot, one step finer)
HOOK_MIN_NORM_BISECTIONS: int = 5
AUDIT_MIN_NORM_BISECTIONS: int = 6
#: the audit's adversarially fine-tuned copy of D (--robust-d N): Adam's lr and betas, PGD steps per update
ROBUST_FINETUNE_LR: float = 2e-4
ROBUST_FINETUNE_BETAS: tuple[float, float] = (0.5, 0.999)
ROBUST_FINETUNE_PGD_STEPS: int = 5
#: real samples the audit loads at least (calibration, "real called real", robustness real->fake)
AUDIT_MIN_REAL: int = 1000
#: the built-in architectures (ganrobust.models) the trainer builds and the audit infers from shapes
ARCHS = ("dcgan", "mlp")
#: generator losses the audit can replay: ns softplus(−s); bce −softplus(s); hinge, wasserstein −s
G_LOSSES = ("ns", "bce", "hinge", "wasserstein")
#: discriminator losses (the trainer's ``loss`` and the robust copy's fine-tuning)
D_LOSSES = ("ns", "hinge", "wgan")
#: how the reference trainer (and ``RobustDLoss``) trains D
D_TRAINING_METHODS = ("standard", "pgd", "fgsm-rs", "r1", "gp")
#: the audit fine-tunes no robust copy of D unless asked (``--robust-d N``)
AUDIT_ROBUST_D_STEPS: int = 0
#: where ``ganrobust compare`` writes its report
COMPARE_OUT: Path = Path("reports/compare")


@dataclass(frozen=True)
class ScoreSpec:
    """How a discriminator is scored (DESIGN.md, "Score"): the settings a
    :class:`~ganrobust.scorer.Scorer` is built from (``Scorer.of(D, spec, call)``), typed once here
    and read by the audit, the snapshot sweep, compare and the hook.

    ``kind``: logit | prob | critic; ``tau``: the threshold (None: 0, or calibrated per snapshot for a
    critic); ``bounds``: the data range; ``bn``: eval | batch; ``head``: the real/fake output of a D with
    several; ``box``: False where D sees G's raw output (StyleGAN), so the range is the budgets' unit
    and not a box (:meth:`for_call`)."""

    kind: ScoreKind = ScoreKind.LOGIT
    tau: float | None = None
    bounds: tuple[float, float] = (-1.0, 1.0)
    bn: BatchNormMode = BatchNormMode.EVAL
    head: int | None = None
    box: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ScoreKind(self.kind))
        object.__setattr__(self, "bn", BatchNormMode(self.bn))
        object.__setattr__(self, "bounds", tuple(self.bounds))

    @classmethod
    def coerce(cls, spec: "ScoreSpec | dict[str, Any]") -> "ScoreSpec":
        """A spec, or one from the Scorer keyword arguments that ``scorer_options`` dicts hold."""
        if isinstance(spec, ScoreSpec):
            return spec
        unknown = set(spec) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"unknown scorer options {sorted(unknown)}; expected some of "
                             f"{[f.name for f in dataclasses.fields(cls)]}")
        return cls(**spec)

    def for_call(self, call: Any) -> "ScoreSpec":
        """This spec for a GAN called through ``call`` (a ``ganrobust.gan_call.GanCall``): no box
        where the adapter feeds D G's raw output (``call.raw_output``, StyleGAN)."""
        return dataclasses.replace(self, box=False) if getattr(call, "raw_output", False) else self

    @property
    def tau_given(self) -> bool:
        """Whether the threshold is given: otherwise a critic's is calibrated on each snapshot."""
        return self.tau is not None

    @property
    def critic(self) -> bool:
        return self.kind is ScoreKind.CRITIC

    def to_dict(self) -> dict[str, Any]:
        """The score convention as a report states it: kind, bounds, bn, and box, tau and head where set."""
        return {"kind": self.kind.value, "bounds": list(self.bounds), "bn": self.bn.value,
                **({} if self.box else {"box": False}), **({} if self.tau is None else {"tau": self.tau}),
                **({} if self.head is None else {"head": self.head})}


@dataclass(frozen=True)
class WatchConfig:
    """What the hook measures, how often, and what it keeps.

    Budgets are fractions of the data range ``bounds``. The defaults keep the measurement
    under ~10% of a DCGAN-32 training step on a 2-core CPU (``benchmarks/watch.py``); set
    ``every=1`` to measure every generator update.
    """

    every: int = 25                  # measure every N-th generator step
    n_probes: int = 64               # held-out probe latents, fixed for the whole run
    eps: float = EPS                 # Odena's "small": linf(p) <= eps (fraction of range)
    eps_l2: float | None = None      # optionally also l2(p) <= eps_l2
    efficiency_steps: int = 3        # L2 PGD steps for s_pgd (0 disables efficiency)
    noise_draws: int = 1             # random-direction control draws per sample
    min_norm_every: int = 4          # eps_star every N measured steps (0 disables)
    min_norm_probes: int = 16        # probes attacked for eps_star
    min_norm_norm: Norm = Norm.LINF  # norm of eps_star and ratio (same as "small")
    ring_size: int = 4               # D snapshots kept in memory
    snapshot_every: int = 100        # persist D (and G before/after) every N generator steps
    persist_measured: bool = False   # also persist snapshots at every measured step
    overlap: bool | str = "auto"     # measure on a background thread while training goes on (same records);
                                     # auto: on a CPU loop that leaves a core idle (ganrobust.background)
    persist_optimizer: bool = True   # persisted steps also keep G's optimizer state (Odena's k-step replay)
    kind: ScoreKind = ScoreKind.LOGIT
    tau: float | None = None
    bounds: tuple[float, float] = (-1.0, 1.0)
    bn: BatchNormMode = BatchNormMode.AUTO       # how D's BatchNorm scores: auto = as observed at G's step
    g_bn: BatchNormMode = BatchNormMode.BATCH    # how G's BatchNorm generates the probes
    seed: int = SEED
    precision: str = PRECISION       # search precision of eps_star and s_pgd (fp32|bf16|fp16|auto)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        object.__setattr__(self, "kind", ScoreKind(self.kind))
        object.__setattr__(self, "bn", BatchNormMode(self.bn))
        object.__setattr__(self, "g_bn", BatchNormMode(self.g_bn))
        if self.g_bn is BatchNormMode.AUTO:
            raise InputError("expected g_bn 'eval' or 'batch' (how G's BatchNorm generates the probes), got 'auto'")
        if self.overlap not in (True, False, "auto") or not isinstance(self.overlap, (bool, str)):
            raise InputError(f"expected overlap True, False or 'auto', got {self.overlap!r}")
        object.__setattr__(self, "min_norm_norm", Norm(self.min_norm_norm))
        object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))
        for name in ("every", "n_probes", "ring_size", "snapshot_every"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}")
        for name in ("efficiency_steps", "min_norm_every", "min_norm_probes", "noise_draws"):
            if getattr(self, name) < 0:
                raise InputError(f"expected {name} >= 0, got {getattr(self, name)}")
        if not 0 < self.eps <= 1:
            raise InputError(f"expected 0 < eps <= 1 (a fraction of the data range), got {self.eps}")
        if self.eps_l2 is not None and self.eps_l2 <= 0:
            raise InputError(f"expected eps_l2 > 0, got {self.eps_l2}")

    def score(self, call: Any = None) -> ScoreSpec:
        """How the hook scores D for a GAN called through ``call``: ``bn='auto'`` scores with running
        statistics until D's mode at G's step is observed."""
        bn = BatchNormMode.EVAL if self.bn is BatchNormMode.AUTO else self.bn
        return ScoreSpec(kind=self.kind, tau=self.tau, bounds=self.bounds, bn=bn).for_call(call)

    def replace(self, **changes: Any) -> "WatchConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown watch options {sorted(unknown)}; see ganrobust.WatchConfig")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if hasattr(value, "value"):
                out[key] = value.value
        return out


#: the hook as the reference trainer runs it: D's BatchNorm mode observed at G's step (its loop,
#: like pytorch/examples, keeps D in train mode then: batch statistics); longer runs persist less often
TRAINER_WATCH = WatchConfig(snapshot_every=250)
#: how D's BatchNorm scores where a run recorded nothing and nothing was observed (a bare checkpoint)
UNRECORDED_BN = BatchNormMode.EVAL


@dataclass(frozen=True)
class AuditConfig:
    """What ``ganrobust audit`` (and the demo's audit) replays and measures."""

    n_probes: int = 256
    batch: int = 64                 # the replayed step's latent batch
    eps: float = EPS                # "small" (linf, fraction of range)
    k_steps: int = 10               # argument 1: replayed steps
    pgd_iterations: int = 50        # argument 1: PGD iterations tracked
    g_loss: str = "ns"
    d_loss: str = "ns"              # D's own loss, for the robust copy's fine-tuning: ns | hinge | wgan
    d_clip: float | None = None     # WGAN weight clipping after each fine-tuning step (the run's own)
    g_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.5, 0.999)
    efficiency_steps: int = 10
    min_norm_probes: int = 64
    eps_grid: tuple[float, ...] = EPS_GRID
    l2_scale: float = 16.0          # l2 grid = eps_grid * l2_scale (fractions of the range)
    g_bn: BatchNormMode = BatchNormMode.BATCH
    seed: int = SEED
    precision: str = PRECISION      # search precision of eps*, curves, efficiency (fp32|bf16|fp16|auto)
    precision_check: int = 16       # probes re-attacked with a float32 search (precision-weaker)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        if self.precision_check < 0:
            raise InputError(f"expected precision_check >= 0, got {self.precision_check}")
        if self.g_loss not in G_LOSSES:
            raise InputError(f"expected {param('g_loss')} among {G_LOSSES}, got {self.g_loss!r}")
        if self.d_loss not in D_LOSSES:
            raise InputError(f"expected a D loss among {D_LOSSES}, got {self.d_loss!r}")
        if self.d_clip is not None and not self.d_clip > 0:
            raise InputError(f"expected a positive d_clip (WGAN weight clipping), got {self.d_clip}")
        for name in ("n_probes", "batch", "k_steps", "pgd_iterations"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}")
        if not 0 < self.eps <= 1:
            raise InputError(f"expected 0 < eps <= 1 (fraction of the data range), got {self.eps}")
        if self.g_lr <= 0:
            raise InputError(f"expected a positive {param('g_lr')}, got {self.g_lr}")
        if not all(0 <= b < 1 for b in self.g_betas):
            raise InputError(f"expected {param('g_betas')} in [0, 1), got {self.g_betas}")
        if self.seed < 0:
            raise InputError(f"expected a {param('seed')} >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["g_bn"] = self.g_bn.value
        return out


@dataclass(frozen=True)
class CompareConfig:
    """What ``compare`` evaluates at every persisted snapshot and at the end of each run."""

    quality_samples: int = 2000      # generated samples per quality score (images: capped by the reference set)
    robustness_samples: int = 64     # samples attacked per direction per point
    eps: float = EPS                 # budget of the reported success rate (fraction of the range)
    eps_grid: tuple[float, ...] = EPS_GRID
    classifier_steps: int = 300      # training steps of the feature-space classifier
    bn: BatchNormMode | None = None  # how D's BatchNorm scores; None: as each run recorded
    verify: bool = True              # check run files against the SHA-256 their manifest recorded
    seed: int = SEED

    def __post_init__(self) -> None:
        if self.bn is not None:
            object.__setattr__(self, "bn", BatchNormMode(self.bn))
        if self.quality_samples < 2 or self.robustness_samples < 1 or self.classifier_steps < 1:
            raise InputError(f"expected quality_samples >= 2, robustness_samples >= 1, classifier_steps >= 1; got "
                             f"{self.quality_samples}, {self.robustness_samples}, {self.classifier_steps}")
        if not 0 < self.eps <= 1:
            raise InputError(f"expected 0 < eps <= 1 (a fraction of the data range), got {self.eps}")
        if self.eps not in self.eps_grid:
            object.__setattr__(self, "eps_grid", tuple(sorted({*self.eps_grid, self.eps})))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bn"] = None if self.bn is None else self.bn.value
        return out


@dataclass(frozen=True)
class TrainConfig:
    """The reference trainer (``ganrobust train``, ``ganrobust.train.train``)."""

    arch: str = "dcgan"              # dcgan | mlp
    data: str = "shapes"             # a built-in dataset name or an .npz/.npy path
    steps: int = 2000                # generator steps
    batch: int = 64
    nz: int = 64
    ngf: int = 32
    ndf: int = 32
    image_size: int = 32
    spectral_norm: bool = False
    loss: str = "ns"                 # ns (non-saturating BCE) | hinge | wgan
    d_training: str = "standard"     # standard | pgd | fgsm-rs | r1 | gp (ganrobust.robust)
    d_eps: float = EPS               # adversarial budget for pgd / fgsm-rs, fraction of the range
    d_steps: int = 5                 # PGD steps for d_training="pgd"
    d_gamma: float = 10.0            # weight of r1 / gp
    n_critic: int = 1
    clip: float = 0.01               # WGAN weight clipping
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_data: int = 10000
    seed: int = SEED
    device: str = DEVICE
    precision: str = PRECISION       # search precision of the robust loss's PGD/FGSM (pgd, fgsm-rs)
    #: a class-conditional DCGAN (G(z, y), projection D(x, y)) on the data's labels
    conditional: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        if self.arch not in ARCHS:
            raise InputError(f"expected arch 'dcgan' or 'mlp', got {self.arch!r}")
        if self.conditional and self.arch != "dcgan":
            raise InputError(f"a conditional GAN is built as a conditional DCGAN with a projection D: expected "
                             f"arch 'dcgan', got {self.arch!r}")
        if self.d_training not in D_TRAINING_METHODS:
            raise InputError(f"expected d_training among {D_TRAINING_METHODS}, got {self.d_training!r}")
        if self.loss not in D_LOSSES:
            raise InputError(f"expected loss among {D_LOSSES}, got {self.loss!r}")
        for name in ("steps", "batch", "n_critic", "nz"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.conditional:  # unconditional runs record exactly what they recorded before
            del out["conditional"]
        return out


@dataclass(frozen=True)
class DemoConfig:
    """``ganrobust demo``: a small DCGAN on the built-in shapes, watched, then audited."""

    steps: int = 600                 # generator steps of the small DCGAN
    every: int = 25                  # measure every N-th generator update
    robust_d: int = 100              # fine-tuning steps of the robust copy of D (0 skips it)
    #: persist every N steps; Odena's arguments are replayed at each persisted snapshot (600 / 100:
    #: six points over training, the count that keeps the demo near 3 minutes on 2 cores, README "Demo")
    snapshot_every: int = 100
    seed: int = SEED
    device: str = DEVICE
    precision: str = PRECISION
    out: Path = Path("reports/demo")

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        if self.steps < 1 or self.every < 1 or self.robust_d < 0 or self.snapshot_every < 1:
            raise InputError(f"expected {param('steps')} >= 1, {param('every')} >= 1, {param('robust_d')} >= 0 and {param('snapshot_every')} >= 1, got "
                             f"{self.steps}, {self.every}, {self.robust_d} and {self.snapshot_every}")

    def watch(self) -> WatchConfig:
        """The hook as the demo runs it: D's BatchNorm mode observed at G's step (its loop keeps D in
        train mode then: batch statistics), snapshots every ``snapshot_every`` steps."""
        return WatchConfig(every=self.every, bn=TRAINER_WATCH.bn, seed=self.seed,
                           snapshot_every=self.snapshot_every, precision=self.precision)

    def train(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, seed=self.seed, device=self.device, precision=self.precision)

    def audit(self) -> AuditConfig:
        return AuditConfig(seed=self.seed, precision=self.precision)
