"""The vocabulary every part of ganrobust shares: norms, directions, score kinds, bounds.

Closed vocabularies are Enums coerced once where input enters (``Norm("linf")`` and
``Norm.LINF`` are both accepted everywhere), so a typo fails at the boundary with the list
of valid values instead of deep inside an attack.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Union

import torch

from ganrobust.errors import InputError


class _Vocabulary(str, enum.Enum):
    """A string enum whose error message lists the accepted values."""

    @classmethod
    def _missing_(cls, value: object) -> "_Vocabulary":
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower().replace("_", "-"):
                    return member
        accepted = ", ".join(repr(m.value) for m in cls)
        raise InputError(f"expected one of {accepted} for {cls.__name__}, got {value!r}")

    def __str__(self) -> str:
        return self.value


class Norm(_Vocabulary):
    """Threat model of a perturbation: ``linf`` (max-abs) or ``l2`` (Euclidean)."""

    LINF = "linf"
    L2 = "l2"

    def of(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample norm of ``delta`` (B, ...) -> (B,)."""
        flat = delta.reshape(delta.shape[0], -1)
        if self is Norm.LINF:
            return flat.abs().amax(dim=1)
        return flat.norm(p=2, dim=1)

    @property
    def dual(self) -> float:
        """Exponent of the dual norm: ||.||_1 for linf, ||.||_2 for l2."""
        return 1.0 if self is Norm.LINF else 2.0


class Direction(_Vocabulary):
    """Which way an attack pushes the decision.

    ``fake->real`` raises the score above ``tau`` (what a generator would exploit);
    ``real->fake`` pushes it below.
    """

    FAKE_TO_REAL = "fake->real"
    REAL_TO_FAKE = "real->fake"

    @classmethod
    def _missing_(cls, value: object) -> "Direction":
        if isinstance(value, str):
            aliases = {"f2r": "fake->real", "fake-to-real": "fake->real",
                       "r2f": "real->fake", "real-to-fake": "real->fake"}
            key = aliases.get(value.lower(), value.lower())
            for member in cls:
                if member.value == key:
                    return member
        return super()._missing_(value)  # type: ignore[return-value]

    @property
    def sign(self) -> float:
        """+1 when the attack raises the score, -1 when it lowers it."""
        return 1.0 if self is Direction.FAKE_TO_REAL else -1.0

    def margin(self, score: torch.Tensor, tau: float) -> torch.Tensor:
        """Signed distance to the decision, ``±(s - tau)``: the attack succeeds once it is >= 0.

        For ``real->fake`` success is the strict ``s < tau``; the margin is then > 0.
        """
        return self.sign * (score - tau)

    def crossed(self, score: torch.Tensor, tau: float) -> torch.Tensor:
        """Whether ``score`` already lies on the target side of ``tau``."""
        if self is Direction.FAKE_TO_REAL:
            return score >= tau
        return score < tau


class ScoreKind(_Vocabulary):
    """What the discriminator outputs.

    ``logit``: a real-valued realness logit (BCE-with-logits, hinge, non-saturating losses).
    ``prob``: a probability from a trailing sigmoid. ``critic``: an unbounded WGAN critic
    whose threshold is calibrated from data.
    """

    LOGIT = "logit"
    PROB = "prob"
    CRITIC = "critic"


class BatchNormMode(_Vocabulary):
    """How BatchNorm layers score: ``eval`` (running statistics) or ``batch`` (statistics of
    the scored batch, running statistics left untouched) — the latter reproduces loops that
    keep D in train mode during the generator step. ``auto`` (the hook's default) is not a mode
    but an instruction: observe the live D at G's optimizer step and use the mode it is in
    (:func:`ganrobust.module_state.observed_bn`); a scorer takes ``eval`` or ``batch`` only."""

    EVAL = "eval"
    BATCH = "batch"
    AUTO = "auto"


NormLike = Union[Norm, str]
DirectionLike = Union[Direction, str]


@dataclass(frozen=True)
class Bounds:
    """The data range ``[lo, hi]`` samples live in (default ``[-1, 1]``, tanh generators).

    The range is the unit of every budget (a fraction of ``hi - lo``). With ``box=True`` (the
    default) it is also a box: inputs must lie inside it and attacks keep ``x + δ`` inside it.
    ``box=False`` is for generators whose output D sees unclamped (StyleGAN: its loss feeds G's
    raw output, which overshoots ``[-1, 1]``, to D): budgets keep the range as their unit, inputs
    need only be finite, and nothing is clamped."""

    lo: float = -1.0
    hi: float = 1.0
    box: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi <= self.lo:
            raise InputError(f"expected finite bounds with lo < hi, got [{self.lo}, {self.hi}]")

    @classmethod
    def coerce(cls, value: "Bounds | tuple[float, float]") -> "Bounds":
        if isinstance(value, Bounds):
            return value
        try:
            lo, hi = value
        except (TypeError, ValueError):
            raise InputError(f"expected bounds as (lo, hi), got {value!r}") from None
        return cls(float(lo), float(hi))

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def to_data(self, fraction: float) -> float:
        """A budget given as a fraction of the range, in data units: ``fraction * (hi - lo)``."""
        return fraction * self.width

    def to_fraction(self, data_units: float) -> float:
        return data_units / self.width

    @property
    def box_lo(self) -> float:
        """The lower end of the box attacks clamp to: ``lo``, or ``-inf`` without a box."""
        return self.lo if self.box else -math.inf

    @property
    def box_hi(self) -> float:
        return self.hi if self.box else math.inf

    def check(self, x: torch.Tensor, name: str = "x", atol: float = 1e-6) -> None:
        """Raise an InputError unless every entry of ``x`` is finite (and inside the box, if one)."""
        if not torch.isfinite(x).all():
            raise InputError(f"{name} contains NaN or inf; clean the inputs before attacking")
        if not self.box:
            return
        lo, hi = x.min().item(), x.max().item()
        if lo < self.lo - atol or hi > self.hi + atol:
            raise InputError(
                f"{name} spans [{lo:.4g}, {hi:.4g}], outside the data bounds "
                f"[{self.lo:g}, {self.hi:g}]; pass bounds=(lo, hi) that match your data "
                f"or clamp the inputs"
            )

    def clamp(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.lo, self.hi) if self.box else x


class Precision(str, enum.Enum):
    """Numeric type of the search: ``fp32``, ``bf16``, ``fp16``, or ``auto`` (bf16 where native)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    AUTO = "auto"

    @classmethod
    def coerce(cls, value: "Precision | str") -> "Precision":
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"expected precision among {[p.value for p in cls]}, got {value!r}") from None

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype of a resolved precision (None: plain float32)."""
        return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(self)
