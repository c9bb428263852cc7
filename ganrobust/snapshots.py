"""Module state as flat tensor lists: a preallocated ring of snapshots, in memory (the run store,
:mod:`ganrobust.runs`, writes them to disk).

A snapshot is the module's ``state_dict()`` (parameters and buffers: BatchNorm statistics,
spectral-norm vectors), copied with one ``torch._foreach_copy_`` into tensors allocated once,
so taking one costs a memory copy and no allocation.
"""

from __future__ import annotations

import torch
from torch import nn


class StateView:
    """The live tensors behind a module's state dict, in a fixed order."""

    def __init__(self, module: nn.Module) -> None:
        state = module.state_dict()
        self.names = list(state)
        self.tensors = [t.detach() for t in state.values()]

    def copy_to(self, out: list[torch.Tensor]) -> None:
        torch._foreach_copy_(out, self.tensors)

    def load(self, src: list[torch.Tensor]) -> None:
        torch._foreach_copy_(self.tensors, src)

    def empty_like(self) -> list[torch.Tensor]:
        return [torch.empty_like(t) for t in self.tensors]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)


class SnapshotRing:
    """The last ``size`` snapshots of a module, keyed by step."""

    def __init__(self, view: StateView, size: int) -> None:
        self.view = view
        self.slots = [view.empty_like() for _ in range(size)]
        self.steps = [-1] * size

    def take(self, step: int) -> list[torch.Tensor]:
        slot = step % len(self.slots)
        self.view.copy_to(self.slots[slot])
        self.steps[slot] = step
        return self.slots[slot]

    def get(self, step: int) -> list[torch.Tensor]:
        slot = step % len(self.slots)
        if self.steps[slot] != step:
            raise KeyError(f"snapshot of step {step} is no longer in the ring (size {len(self.slots)})")
        return self.slots[slot]

    @property
    def nbytes(self) -> int:
        return self.view.nbytes * len(self.slots)
