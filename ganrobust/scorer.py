"""One discriminator convention: any D wrapped into a realness score ``s`` and threshold ``tau``.
(One module, under 400 lines: it is one class, and every method shares its convention; what a scorer
learns once per model — batch coupling, batch sizes, channels-last — is in ganrobust.model_checks.)

"real" iff ``s >= tau``. A scorer never changes the module it wraps: mode flags, parameter
``.grad``, buffers (BatchNorm running statistics, spectral-norm ``u``) and the global RNG
state are exactly as before each call. Attacks differentiate ``s`` with respect to the
input only (``torch.autograd.grad(..., inputs=x)``), so no parameter gradient is formed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

import torch
from torch import nn

from ganrobust.conventions import BatchNormMode, Bounds, Direction, DirectionLike, ScoreKind
from ganrobust.model_checks import Coupling, ModelChecks, channels_last_agrees, detect_coupling, score_padded
from ganrobust.module_copy import copy_module
from ganrobust.module_state import evaluation_state, preserved_rng
from ganrobust.errors import InputError, param

if TYPE_CHECKING:
    from ganrobust.attacks.precision import Precision
    from ganrobust.config import ScoreSpec

Head = Union[int, Callable[[Any], torch.Tensor], None]

#: Probabilities are mapped to logits through ``logit(clamp(p, PROB_CLAMP, 1 - PROB_CLAMP))``
#: when no trailing ``nn.Sigmoid`` can be stripped; beyond that the gradient is zero.
PROB_CLAMP = 1e-6


class Scorer:
    """Wrap a discriminator ``module`` into a per-sample realness score.

    Args:
        module: the discriminator; DDP-style wrappers with ``.module`` are unwrapped.
        kind: ``logit`` (default), ``prob`` (a trailing ``nn.Sigmoid`` is detected at run
            time and its input used; otherwise a clamped logit) or ``critic`` (WGAN;
            ``tau`` must be given or calibrated with :meth:`calibrate`).
        tau: decision threshold on the score. Defaults to 0 for ``logit`` and ``prob``
            (p = 0.5), and is required for ``critic``.
        head: for a D with several outputs (AC-GAN), an index into a tuple/list output
            (or the last dimension of a tensor), or a callable selecting the realness output.
        bounds: the data range ``(lo, hi)``; budgets are fractions of ``hi - lo``.
        bn: ``eval`` scores BatchNorm with running statistics; ``batch`` with the
            statistics of the scored batch, leaving the running statistics untouched.
        call: the GAN adapter (``ganrobust.gan_call.GanCall``) that says how D takes a condition;
            :meth:`on` binds a batch's conditions where it needs them.

    Outputs with more than one value per sample (PatchGAN maps) are averaged per sample.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        kind: ScoreKind | str = ScoreKind.LOGIT,
        tau: float | None = None,
        head: Head = None,
        bounds: Bounds | tuple[float, float] = (-1.0, 1.0),
        bn: BatchNormMode | str = BatchNormMode.EVAL,
        box: bool = True,
        call: Any = None,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise InputError(f"expected a torch.nn.Module discriminator, got {type(module).__name__}")
        while hasattr(module, "module") and isinstance(getattr(module, "module"), nn.Module):
            module = module.module  # DistributedDataParallel / DataParallel
        self.module = module
        self.kind = ScoreKind(kind)
        if tau is None and self.kind is not ScoreKind.CRITIC:
            tau = 0.0
        if tau is not None and not math.isfinite(tau):
            raise InputError(f"expected a finite tau, got {tau}")
        self._tau = None if tau is None else float(tau)
        if head is not None and not (isinstance(head, int) or callable(head)):
            raise InputError(f"expected head to be an int index or a callable, got {head!r}")
        self.head = head
        self.bounds = Bounds.coerce(bounds)
        if not box:  # D sees G's raw output (StyleGAN): the range is the budgets' unit, not a box
            self.bounds = dataclasses.replace(self.bounds, box=False)
        self.bn = BatchNormMode(bn)
        if self.bn is BatchNormMode.AUTO:
            raise ValueError("bn='auto' is resolved by ganrobust.watch from D's mode at G's step; a scorer needs "
                             "bn='eval' (running statistics) or bn='batch' (batch statistics)")
        self._sigmoids = [m for m in module.modules() if isinstance(m, nn.Sigmoid)]
        self._depth = 0
        #: autocast dtype of the forward (a reduced-precision *search* copy, see
        #: :meth:`for_attack`); None: the module's own float32. Scores are returned in float32.
        self.autocast: torch.dtype | None = None
        #: the float32 scorer that verifies a search copy's candidates (None: this one is)
        self.reference: Scorer | None = None
        #: How a ``prob`` output was turned into a logit: "stripped", "clamped" or None.
        self.prob_conversion: str | None = None
        #: Number of raw outputs averaged per sample (1 unless a patch discriminator).
        self.outputs_per_sample: int | None = None
        #: the condition of the batch being scored (conditional GANs: D(x, c)), row i for x[i];
        #: None for D(x). Set with :meth:`conditioned`; attacks that score a subset of rows
        #: take the matching rows with :meth:`rows`.
        self.condition: torch.Tensor | None = None
        #: the GAN adapter D is called through on (x, c) (a ``ganrobust.gan_call.GanCall``); None:
        #: ``D(x)``, or ``D(x, c)`` once conditioned. A scorer built with its call conditions itself
        #: (:meth:`on`)
        self.call: Any = call
        #: what is learnt once per model (batch coupling, batch sizes, channels-last), shared by copies
        self.checks = ModelChecks()

    # -- configuration ---------------------------------------------------------------
    @property
    def tau(self) -> float:
        if self._tau is None:
            raise InputError(
                "this critic scorer has no threshold yet: call scorer.calibrate(real, fake) "
                "or pass tau= when building it"
            )
        return self._tau

    @property
    def has_tau(self) -> bool:
        return self._tau is not None

    @property
    def device(self) -> torch.device:
        for tensor in self.module.parameters():
            return tensor.device
        for tensor in self.module.buffers():
            return tensor.device
        return torch.device("cpu")

    def _replace(self, **changes: Any) -> "Scorer":
        new = copy.copy(self)
        new.__dict__.update(changes)
        new._depth = 0
        return new

    def conditioned(self, c: torch.Tensor | None, call: Any = None) -> "Scorer":
        """This scorer with D called on ``(x, c)``: row i of every scored batch is ``x[i]`` with
        condition ``c[i]`` (``call``, a GanCall, says how D takes it). ``c=None``: D(x) again."""
        if c is None and call is None:
            return self if self.condition is None else self._replace(condition=None)
        return self._replace(condition=None if c is None else c.detach(), call=call or self.call)

    def on(self, c: torch.Tensor | None) -> "Scorer":
        """This scorer for a batch whose row i has condition ``c[i]``: bound to them where its GAN
        adapter calls D through itself (``call.binds``: conditional, or a custom adapter), else as it is."""
        if self.call is None or not self.call.binds:
            return self
        return self.conditioned(c, self.call)

    def through(self, call: Any) -> "Scorer":
        """This scorer with D called through the GAN adapter ``call`` where it has none of its own."""
        return self if self.call is not None or call is None else self._replace(call=call)

    @classmethod
    def of(cls, module: nn.Module, spec: "ScoreSpec", call: Any = None) -> "Scorer":
        """The scorer of ``module`` as ``spec`` says, D called through ``call`` (a GanCall; None: D(x))."""
        return cls(module, kind=spec.kind, tau=spec.tau, head=spec.head, bounds=spec.bounds, bn=spec.bn,
                   box=spec.box, call=call)

    def rows(self, idx: torch.Tensor) -> "Scorer":
        """The scorer for the rows ``idx`` of the batch (an attack's still-active subset)."""
        if self.condition is None:
            return self
        return self._replace(condition=self.condition.index_select(0, idx.to(self.condition.device)))

    def with_tau(self, tau: float) -> "Scorer":
        if not math.isfinite(tau):
            raise InputError(f"expected a finite tau, got {tau}")
        return self._replace(_tau=float(tau))

    def calibrate(self, real: torch.Tensor, fake: torch.Tensor) -> "Scorer":
        """A copy whose ``tau`` is the midpoint of the mean real and mean fake scores."""
        s_real, s_fake = self.score(real), self.score(fake)
        return self.with_tau(0.5 * (s_real.mean().item() + s_fake.mean().item()))

    def frozen(self, *, channels_last: bool = False, precision: "Precision | str" = "fp32") -> "Scorer":
        """A scorer over a deep copy of the module with every parameter frozen.

        Attacks run on this copy, so whatever they (or a backend) do to parameters,
        gradients or hooks never reaches the user's module. ``channels_last`` stores conv
        weights in NHWC, which oneDNN runs without layout copies. ``precision`` (``fp32``,
        ``bf16``, ``fp16`` or ``auto``, see ``ganrobust.attacks.precision``) runs the copy's
        forward under autocast; its :attr:`reference` is this scorer, which verifies in float32.
        """
        from ganrobust.attacks.precision import resolve_precision

        dtype = resolve_precision(precision, self.device).dtype
        module = copy_module(self.module)
        module.requires_grad_(False)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        new = Scorer(module, kind=self.kind, tau=self._tau, head=self.head,
                     bounds=self.bounds, bn=self.bn)
        new.prob_conversion, new.outputs_per_sample = self.prob_conversion, self.outputs_per_sample
        new.condition, new.call = self.condition, self.call
        new.checks = self.checks
        new.autocast = dtype
        new.reference = self.reference or self
        return new

    @property
    def precision(self) -> str:
        """The precision this scorer's forward runs in: ``fp32``, ``bf16`` or ``fp16``."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.autocast, "fp32")  # type: ignore[arg-type]

    def for_attack(self, x: torch.Tensor, *, precision: "Precision | str" = "fp32"
                   ) -> tuple["Scorer", torch.Tensor]:
        """The scorer and input layout attacks run on: a frozen copy, channels-last for a
        conv D on CPU images (measured ~1.5x faster forward+backward, benchmarks/attacks.py) where
        that layout was checked once on this model to give its scores (else the standard layout),
        searching in ``precision`` (its :attr:`reference`, this scorer, verifies in float32)."""
        conv = x.dim() == 4 and x.device.type == "cpu" and any(
            isinstance(m, nn.Conv2d) for m in self.module.modules())
        if conv and channels_last_agrees(self, x):
            return (self.frozen(channels_last=True, precision=precision),
                    x.contiguous(memory_format=torch.channels_last))
        return self.frozen(precision=precision), x

    def __repr__(self) -> str:
        tau = "uncalibrated" if self._tau is None else f"{self._tau:.4g}"
        return (f"Scorer({type(self.module).__name__}, kind={self.kind.value}, tau={tau}, "
                f"bounds=[{self.bounds.lo:g}, {self.bounds.hi:g}], bn={self.bn.value})")

    # -- state -----------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator["Scorer"]:
        """Enter scoring state once for many forward calls (re-entrant).

        Puts the module in eval mode (BatchNorm in batch-statistics mode without tracking
        when ``bn='batch'``), forks the global RNG, and restores every flag on exit.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        with preserved_rng(self.device), evaluation_state(self.module, self.bn):
            self._depth = 1
            try:
                yield self
            finally:
                self._depth = 0

    # -- batches ---------------------------------------------------------------------
    @property
    def coupling(self) -> Coupling | None:
        """Whether a sample's score depends on its batch (None until a batch of two was scored)."""
        return self.checks.coupling

    @property
    def whole_batch(self) -> bool:
        """Attacks must score the whole batch with a mask, never a subset: BatchNorm in batch mode
        or a D found batch-coupled (minibatch standard deviation, ...)."""
        return self.bn is BatchNormMode.BATCH or bool(self.checks.coupling and self.checks.coupling.coupled)

    def coupling_record(self) -> dict[str, Any] | None:
        """The batch coupling as reports and run manifests state it (None: not measured yet)."""
        return None if self.checks.coupling is None else self.checks.coupling.to_dict(self.checks.group)

    # -- scoring ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` of ``x`` (B, ...); call inside :meth:`session`. Differentiable in x.

        The first batch of two or more a model scores is also scored in its first half once, which
        says whether the model is batch-coupled (:mod:`ganrobust.model_checks`); batches of a size
        the model refuses are padded to the group it needs."""
        self.check_batch(x)
        return self._padded(x, self.condition)

    def check_batch(self, x: torch.Tensor) -> "Scorer":
        """Measure the batch coupling on ``x`` unless it is known (once per model; a no-op after)."""
        if self.checks.coupling is None and x.shape[0] >= 2:
            with self.session():
                self.checks.coupling = detect_coupling(self._padded, x, self.condition, self.module, self.bn,
                                                       lambda: self.checks.group)
        return self

    def _padded(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Scores of ``x`` with condition ``c``, padded to the batch sizes the model takes."""
        return score_padded(self._scores, self.checks, x, c)

    def _scores(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.kind is ScoreKind.PROB and self._sigmoids:
            record: dict[str, torch.Tensor] = {}

            def _hook(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
                record["in"], record["out"] = inp[0], out

            handles = [m.register_forward_hook(_hook) for m in self._sigmoids]
            try:
                raw = self._select(self._module(x, c))
            finally:
                for h in handles:
                    h.remove()
            last = record.get("out")
            if (last is not None and raw.numel() == last.numel()
                    and raw.untyped_storage().data_ptr() == last.untyped_storage().data_ptr()):
                self.prob_conversion = "stripped"
                return self._reduce(record["in"].reshape(raw.shape), x.shape[0])
            return self._reduce(self._clamped_logit(raw), x.shape[0])
        raw = self._select(self._module(x, c))
        if self.kind is ScoreKind.PROB:
            raw = self._clamped_logit(raw)
        return self._reduce(raw, x.shape[0])

    def _module(self, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        """The module's output; under autocast for a reduced-precision search copy (scores
        are brought back to float32 by :meth:`_reduce` and :meth:`_clamped_logit`)."""
        if self.autocast is None:
            return self._call(x, c)
        with torch.autocast(device_type=x.device.type, dtype=self.autocast):
            return self._call(x, c)

    def _call(self, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        if c is None and self.call is None:
            return self.module(x)
        if c is not None and c.shape[0] != x.shape[0]:
            raise InputError(f"expected one condition per scored sample, got {c.shape[0]} conditions for "
                             f"{x.shape[0]} samples")
        if self.call is None:
            return self.module(x, c)
        return self.call.score_input(self.module, x, c)

    def _clamped_logit(self, p: torch.Tensor) -> torch.Tensor:
        self.prob_conversion = "clamped"
        p = _widen(p)
        return torch.logit(p.clamp(PROB_CLAMP, 1 - PROB_CLAMP))

    def _select(self, out: Any) -> torch.Tensor:
        if self.head is None:
            if isinstance(out, (tuple, list)):
                raise InputError(
                    f"the discriminator returns {len(out)} outputs; pass head=INDEX or "
                    f"head=callable selecting the real/fake output"
                )
            return out
        if callable(self.head):
            return self.head(out)
        return out[self.head] if isinstance(out, (tuple, list)) else out[..., self.head]

    def _reduce(self, out: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(out, torch.Tensor) or out.numel() % max(batch, 1) != 0:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"expected the discriminator output to have {batch} x k values for a batch "
                f"of {batch}, got {got}; select the realness output with head="
            )
        flat = _widen(out.reshape(batch, -1))
        self.outputs_per_sample = flat.shape[1]
        return flat[:, 0] if flat.shape[1] == 1 else flat.mean(dim=1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)``; raises ValueError on NaN/inf scores."""
        with self.session():
            s = self.forward(x)
        check_finite(s, "scores")
        return s

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores without a graph."""
        return self(x)

    def is_real(self, s: torch.Tensor) -> torch.Tensor:
        return s >= self.tau

    def margin(self, x: torch.Tensor, direction: DirectionLike) -> torch.Tensor:
        return Direction(direction).margin(self(x), self.tau)

    def margin_grad(self, x: torch.Tensor, direction: DirectionLike) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s, margin, d margin / d x)`` for a batch; inside or outside a session."""
        direction = Direction(direction)
        with self.session(), torch.enable_grad():
            x = x.detach().requires_grad_(True)
            s = self.forward(x)
            m = direction.margin(s, self.tau)
            (g,) = torch.autograd.grad(m.sum(), x)
        return s.detach(), m.detach(), g


def _widen(t: torch.Tensor) -> torch.Tensor:
    """Reduced-precision outputs of an autocast search back to float32 (others unchanged)."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def check_finite(s: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(s)
    if bad.any():
        raise InputError(
            f"the discriminator returned NaN or inf {what} for {int(bad.sum())} of "
            f"{s.numel()} samples; check the weights (NaN after a diverged step?) and inputs"
        )


def with_threshold(scorer: Scorer, real: torch.Tensor | None, fake: torch.Tensor, *, tau_given: bool,
                   missing: str = "") -> Scorer:
    """The scorer a measurement scores with, the one place a critic's threshold is set: a critic
    (WGAN) D without a given ``tau`` is calibrated on this snapshot with ``real`` and ``fake``
    (:meth:`Scorer.calibrate`: the midpoint of their mean scores), never a threshold carried over
    from another snapshot; any other scorer is returned as it is. ``missing``: the one-line error
    when a critic has no real samples."""
    if scorer.kind is not ScoreKind.CRITIC or tau_given:
        return scorer
    if real is None:
        raise InputError(missing or f"a critic D needs real samples to calibrate tau: pass {param('real')}")
    return scorer.calibrate(real.to(fake.device), fake)


def as_scorer(d: "Scorer | nn.Module", **kwargs: Any) -> Scorer:
    """Accept either a ready scorer or a bare module (wrapped with ``kwargs``)."""
    if isinstance(d, Scorer):
        if kwargs:
            raise InputError("pass scorer options when building the Scorer, not with a ready Scorer")
        return d
    return Scorer(d, **kwargs)
