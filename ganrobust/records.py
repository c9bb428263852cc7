"""Typed records: what the hook measures, as the run store writes it, one line of ``steps.jsonl`` each.

    models + data -> snapshots -> measurement -> **records** -> run store -> report

Each record kind is a dataclass with ``to_dict`` (the JSON line, keys in a fixed order) and
``from_dict`` (which accepts every line a ganrobust of the same run schema wrote, and keeps
keys it does not know in ``extra``, written back unchanged). :func:`from_dict` dispatches on
``kind``. The summaries inside (``probe``, ``train``) are keyed by the metric registry
(:mod:`ganrobust.metrics`), each value a stored estimate ``{value, ci_low, ci_high, n, ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from ganrobust.stats import Estimate
from ganrobust.errors import InputError

#: the schema of a run directory; its records carry the same version (``manifest.json`` states it)
RUN_SCHEMA = "ganrobust.run/1"
SUPPORTED_SCHEMAS = (RUN_SCHEMA,)


def _split(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known and k != "kind"}


@dataclass
class StepRecord:
    """One measured generator step: the update's summary on the probes (and on the batch of the
    step itself when its latents were seen), where its per-sample arrays and snapshots were
    written, and — joined by the reader — whether its flips persisted past D's next update.
    ``phase`` says which kind of G step it was (:mod:`ganrobust.capture`): ``Gmain``, a step whose
    loss went through D, or ``Greg``, a regulariser step that did not (StyleGAN2-ADA's lazy
    path-length penalty); runs written before phases were recorded have none."""

    KIND: ClassVar[str] = "step"
    SCHEMA: ClassVar[str] = RUN_SCHEMA
    FIELDS: ClassVar[tuple[str, ...]] = ("step", "d_steps", "tau", "probe", "samples", "train", "snapshots", "seconds",
                                         "phase")

    step: int
    probe: dict[str, Any]
    d_steps: int | None = None             # D updates since G's previous step
    tau: float | None = None               # the threshold the step was scored with
    samples: dict[str, str] = field(default_factory=dict)   # "probe"/"train" -> per-sample arrays, run-relative
    train: dict[str, Any] | None = None    # the summary on the step's own latents
    snapshots: dict[str, str] | None = None  # kind -> persisted snapshot, run-relative
    seconds: float | None = None           # time the measurement took
    phase: str | None = None               # "Gmain" or "Greg" (None: written before phases were recorded)
    extra: dict[str, Any] = field(default_factory=dict)
    persists: Estimate | None = None       # from the later PersistsRecord (never written in this line)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND, "step": self.step, "d_steps": self.d_steps, "tau": self.tau,
                               "probe": self.probe, "samples": self.samples}
        if self.train is not None:
            out["train"] = self.train
        if self.snapshots is not None:
            out["snapshots"] = self.snapshots
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.phase is not None:
            out["phase"] = self.phase
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "StepRecord":
        return cls(step=int(obj["step"]), probe=obj["probe"], d_steps=obj.get("d_steps"), tau=obj.get("tau"),
                   samples=obj.get("samples") or {}, train=obj.get("train"), snapshots=obj.get("snapshots"),
                   seconds=obj.get("seconds"), phase=obj.get("phase"), extra=_split(obj, cls.FIELDS))

    # -- reading -----------------------------------------------------------------------
    @property
    def raw(self) -> dict[str, Any]:
        """The line as written."""
        return self.to_dict()

    def estimate(self, key: str, batch: str = "probe") -> Estimate:
        summary = self.probe if batch == "probe" else self.train
        if summary is None:
            raise KeyError(f"step {self.step} has no {batch!r} summary")
        return Estimate.from_dict(summary[key])

    @property
    def aar(self) -> Estimate:
        return self.estimate("aar")

    @property
    def flip_rate(self) -> Estimate:
        return self.estimate("flip_rate")

    @property
    def noise_flip_rate(self) -> Estimate:
        return self.estimate("noise_flip_rate")


@dataclass
class PersistsRecord:
    """Whether the flips of ``step`` persist: D_{t+1}, after its next update, still calls them real
    (scored with ``tau``, a critic's calibrated on that next snapshot)."""

    KIND: ClassVar[str] = "persists"
    SCHEMA: ClassVar[str] = RUN_SCHEMA
    FIELDS: ClassVar[tuple[str, ...]] = ("step", "d_steps", "tau", "persists")

    step: int
    persists: Estimate
    d_steps: int | None = None
    tau: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "step": self.step, "d_steps": self.d_steps, "tau": self.tau,
                "persists": self.persists.to_dict(), **self.extra}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "PersistsRecord":
        return cls(step=int(obj["step"]), persists=Estimate.from_dict(obj["persists"]), d_steps=obj.get("d_steps"),
                   tau=obj.get("tau"), extra=_split(obj, cls.FIELDS))


@dataclass
class ErrorRecord:
    """A measurement that failed at ``step`` (the user's training went on)."""

    KIND: ClassVar[str] = "error"
    SCHEMA: ClassVar[str] = RUN_SCHEMA
    FIELDS: ClassVar[tuple[str, ...]] = ("step", "where", "error", "traceback")

    step: int
    where: str
    error: str
    traceback: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "step": self.step, "where": self.where, "error": self.error,
                "traceback": self.traceback, **self.extra}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "ErrorRecord":
        return cls(step=int(obj["step"]), where=str(obj.get("where", "")), error=str(obj.get("error", "")),
                   traceback=str(obj.get("traceback", "")), extra=_split(obj, cls.FIELDS))


Record = Union[StepRecord, PersistsRecord, ErrorRecord]
KINDS: dict[str, type[StepRecord] | type[PersistsRecord] | type[ErrorRecord]] = {
    cls.KIND: cls for cls in (StepRecord, PersistsRecord, ErrorRecord)}


def from_dict(obj: dict[str, Any]) -> Record:
    """The record of one ``steps.jsonl`` line (a line without ``kind`` is a step, as the first
    runs wrote). ValueError for an unknown kind or a line missing a required key."""
    kind = obj.get("kind", "step")
    cls = KINDS.get(kind)
    if cls is None:
        raise InputError(f"unknown record kind {kind!r}; expected one of {sorted(KINDS)}")
    try:
        return cls.from_dict(obj)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"a {kind!r} record without a valid {err}") from None
