"""The typed state the hook carries between optimizer hooks: the step captured at G's pre-hook,
what one rank measured of it, and the step whose persistence waits for D's next update.

    pre-hook(t)  -> CapturedStep(t)         x = G_θ(Z), the step's own batch, D_t in the ring
    post-hook(t) -> RankRows (gathered)      every rank's probe rows and training batch
                 -> PendingStep(t)           x' = G_θ'(Z), the rows and their flips
    pre-hook(t+k), D moved since -> PersistsRecord(t): D_{t+k}(x') on the same rows
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TrainBatch:
    """The latents ``(z, c)`` the step itself used, cloned, and ``x = G_θ(z, c)``."""

    z: torch.Tensor
    c: torch.Tensor | None
    x: torch.Tensor


@dataclass
class PendingStep:
    """A measured step whose flips wait for D's next update (``persists``). Under ``overlap`` the
    hook holds it before the measurement thread has measured the step: ``flip`` is None until then."""

    step: int
    x_next: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    flip: np.ndarray | None = None

    @property
    def measured(self) -> bool:
        return self.flip is not None

    def fill(self, x_next: torch.Tensor, rows: torch.Tensor, flip: np.ndarray) -> None:
        self.x_next, self.rows, self.flip = x_next, rows, flip


@dataclass
class HandedOver:
    """What the measurement thread needs of the live models, read on the training thread
    (``overlap``): G_θ'(Z), G_θ' of the step's batch, a copy of D_t and, when the step is persisted,
    copies of θ and θ'."""

    x_next: torch.Tensor
    snapshot: list[torch.Tensor]
    pending: PendingStep
    x_train_next: torch.Tensor | None = None
    theta: list[torch.Tensor] | None = None
    theta_next: list[torch.Tensor] | None = None


@dataclass
class CapturedStep:
    """G's step ``step`` as its pre-hook saw it: its phase, the D updates since G's previous step,
    the probes through G before the step (``x``), the step's own batch when its latents were seen
    (or why not, ``train_error``) and, when the step is persisted, G's optimizer state before it."""

    step: int
    phase: str
    d_steps: int
    x: torch.Tensor
    train: TrainBatch | None = None
    train_error: str | None = None
    optimizer: tuple[str, dict] | None = None   # (class name, state) of G's optimizer before the step
    handed: HandedOver | None = None             # set under overlap, on the training thread


@dataclass
class RankRows:
    """What one rank ships to rank 0 (pickled by the gather): its probe rows' indices and per-sample
    arrays (None when it measured none) and its training batch's arrays, or why they are missing."""

    rows: np.ndarray
    probe: dict[str, np.ndarray] | None
    train: dict[str, np.ndarray] | None = None
    train_error: str | None = None


@dataclass
class RankMeasurement:
    """This rank's measurement of a step before the gather: what it ships and what it keeps for
    persistence (``x_next``, its ``rows`` and their ``flip``), with the threshold it scored with."""

    shipped: RankRows
    x_next: torch.Tensor
    rows: torch.Tensor
    flip: np.ndarray
    tau: float | None
    snapshot: list[torch.Tensor]
