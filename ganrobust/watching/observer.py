"""The loop, as events: PyTorch's global optimizer step hooks and the loop's forwards turned into
typed generator-step events (ignite-style: the observer fires, the handlers decide).

The observer recognises G's and D's optimizers by parameter identity (an optimizer whose
parameters all belong to G is G's), so it needs nothing about them, and counts:

* at G's optimizer *pre*-hook, :class:`GStepStarts`: the step number (1, 2, ...), its phase
  (``Gmain``/``Greg``, :mod:`ganrobust.capture`), the D updates since G's previous step and the
  optimizer about to step;
* at G's *post*-hook, :class:`GStepEnded` with the same step number;
* D's post-hooks only move the D-update count, and every G or D step tells the forward capture
  that later forwards belong to the next step.

While ``listening()`` is false (the hook stopped measuring after repeated errors) G's steps are
neither counted nor fired.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ganrobust.capture import ForwardCapture
from ganrobust.errors import InputError


@dataclass(frozen=True)
class GStepStarts:
    """G's optimizer is about to take generator step ``step``."""

    step: int
    phase: str
    d_steps: int          # D updates since G's previous step
    optimizer: torch.optim.Optimizer


@dataclass(frozen=True)
class GStepEnded:
    """G's optimizer took generator step ``step``."""

    step: int


class LoopObserver:
    """Turns one G/D pair's optimizer steps and forwards into :class:`GStepStarts`/:class:`GStepEnded`."""

    def __init__(self, G: nn.Module, D: nn.Module, call: Any, *, on_start: Callable[[GStepStarts], None],
                 on_end: Callable[[GStepEnded], None], listening: Callable[[], bool] = lambda: True) -> None:
        self._G, self._D, self._call = G, D, call
        self._g_ids = {id(p) for p in G.parameters()}  # what the user's optimizers hold
        self._d_ids = {id(p) for p in D.parameters()}
        if self._g_ids & self._d_ids:
            raise InputError("G and D share parameters; pass the generator and discriminator modules separately")
        self._on_start, self._on_end, self._listening = on_start, on_end, listening
        self._kinds: "weakref.WeakKeyDictionary[torch.optim.Optimizer, str | None]" = weakref.WeakKeyDictionary()
        self._optimizers: dict[str, "weakref.ref[torch.optim.Optimizer]"] = {}
        self.g_step = 0
        self.d_steps_since = 0
        self.forwards: ForwardCapture | None = None
        self._handles: list[Any] = []

    def start(self) -> None:
        """Register the optimizer hooks and the forward capture (process-wide; :meth:`stop` removes them)."""
        self.forwards = ForwardCapture(self._G, self._D, self._call)
        self._handles = [register_optimizer_step_pre_hook(self.pre_hook),
                         register_optimizer_step_post_hook(self.post_hook), self.forwards]

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def kind(self, optimizer: torch.optim.Optimizer) -> str | None:
        """``"G"``, ``"D"`` or None (another model's optimizer), decided once per optimizer."""
        if optimizer not in self._kinds:
            ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
            kind = "G" if ids and ids <= self._g_ids else "D" if ids and ids <= self._d_ids else None
            self._kinds[optimizer] = kind
            if kind:
                self._optimizers[kind] = weakref.ref(optimizer)
        return self._kinds[optimizer]

    def optimizer(self, kind: str) -> torch.optim.Optimizer | None:
        """The last live optimizer seen stepping ``kind``'s parameters (``"G"``/``"D"``)."""
        ref = self._optimizers.get(kind)
        return None if ref is None else ref()

    def latents(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(z, c)`` of the G step about to be taken, as the forwards saw them (:mod:`ganrobust.capture`)."""
        return None if self.forwards is None else self.forwards.latents()

    def pre_hook(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if self.kind(optimizer) != "G" or not self._listening():
            return
        self.g_step += 1
        assert self.forwards is not None
        event = GStepStarts(step=self.g_step, phase=self.forwards.phase, d_steps=self.d_steps_since,
                            optimizer=optimizer)
        self.d_steps_since = 0
        self._on_start(event)

    def post_hook(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        kind = self.kind(optimizer)
        if kind in ("G", "D") and self.forwards is not None:
            self.forwards.stepped()  # later forwards belong to the next step
        if kind == "D":
            self.d_steps_since += 1
        elif kind == "G" and self._listening():
            self._on_end(GStepEnded(step=self.g_step))
