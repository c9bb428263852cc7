"""One source of defaults for the hook, ``audit`` and the command line (torch-fidelity's
``defaults.py`` pattern): a frozen config, changed with :meth:`WatchConfig.replace`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganrobust.conventions import BatchNormMode, Norm, ScoreKind


#: precision of attack *searches* (fp32 | bf16 | fp16 | auto: bf16 where the CPU/GPU has native
#: bf16, else fp32). Verdicts are verified in float32 whatever it is. fp32 by default: a bf16
#: search agreed with float32 (README, "Precision") but on the 2-core AVX512 + avx512_bf16 host
#: that measured it, bf16 ran slower than float32 (matmul 0.56x, conv forward+backward 0.73x), so
#: it buys nothing there; choose auto/bf16 where benchmarks/attacks.py shows it faster.
PRECISION: str = "fp32"

#: seconds any torch.distributed collective may wait (``ganrobust.distributed``): a rank that died
#: without reaching a gather makes the others fail after at most this long; overridden by the
#: ``GANROBUST_DIST_TIMEOUT`` environment variable (seconds) for sharded CLI runs
DIST_TIMEOUT_S: float = 600.0

# the linf budgets (fractions of the data range) of every robustness curve: audit and compare
EPS_GRID: tuple[float, ...] = (0.5 / 255, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)


@dataclass(frozen=True)
class WatchConfig:
    """What the hook measures, how often, and what it keeps.

    Budgets are fractions of the data range ``bounds``. The defaults keep the measurement
    under ~10% of a DCGAN-32 training step on a 2-core CPU (``benchmarks/watch.py``); set
    ``every=1`` to measure every generator update.
    """

    every: int = 25                  # measure every N-th generator step
    n_probes: int = 64               # held-out probe latents, fixed for the whole run
    eps: float = 8 / 255             # Odena's "small": linf(p) <= eps (fraction of range)
    eps_l2: float | None = None      # optionally also l2(p) <= eps_l2
    efficiency_steps: int = 3        # L2 PGD steps for s_pgd (0 disables efficiency)
    noise_draws: int = 1             # random-direction control draws per sample
    min_norm_every: int = 4          # eps_star every N measured steps (0 disables)
    min_norm_probes: int = 16        # probes attacked for eps_star
    min_norm_norm: Norm = Norm.LINF  # norm of eps_star and ratio (same as "small")
    ring_size: int = 4               # D snapshots kept in memory
    snapshot_every: int = 100        # persist D (and G before/after) every N generator steps
    persist_measured: bool = False   # also persist snapshots at every measured step
    kind: ScoreKind = ScoreKind.LOGIT
    tau: float | None = None
    bounds: tuple[float, float] = (-1.0, 1.0)
    bn: BatchNormMode = BatchNormMode.EVAL       # how D's BatchNorm scores
    g_bn: BatchNormMode = BatchNormMode.BATCH    # how G's BatchNorm generates the probes
    seed: int = 0
    precision: str = PRECISION       # search precision of eps_star and s_pgd (fp32|bf16|fp16|auto)

    def __post_init__(self) -> None:
        from ganrobust.attacks.precision import Precision  # the attacks package reads PRECISION

        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        object.__setattr__(self, "kind", ScoreKind(self.kind))
        object.__setattr__(self, "bn", BatchNormMode(self.bn))
        object.__setattr__(self, "g_bn", BatchNormMode(self.g_bn))
        object.__setattr__(self, "min_norm_norm", Norm(self.min_norm_norm))
        object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))
        for name in ("every", "n_probes", "ring_size", "snapshot_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        for name in ("efficiency_steps", "min_norm_every", "min_norm_probes", "noise_draws"):
            if getattr(self, name) < 0:
                raise ValueError(f"expected {name} >= 0, got {getattr(self, name)}")
        if not 0 < self.eps <= 1:
            raise ValueError(f"expected 0 < eps <= 1 (a fraction of the data range), got {self.eps}")
        if self.eps_l2 is not None and self.eps_l2 <= 0:
            raise ValueError(f"expected eps_l2 > 0, got {self.eps_l2}")

    def replace(self, **changes: Any) -> "WatchConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown watch options {sorted(unknown)}; see ganrobust.WatchConfig")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if hasattr(value, "value"):
                out[key] = value.value
        return out
