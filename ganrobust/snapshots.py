"""Module state as flat tensor lists: a preallocated ring of snapshots and safetensors files.

A snapshot is the module's ``state_dict()`` (parameters and buffers: BatchNorm statistics,
spectral-norm vectors), copied with one ``torch._foreach_copy_`` into tensors allocated once,
so taking one costs a memory copy and no allocation.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
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


def save_state(path: Path, names: list[str], tensors: list[torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors to ``path`` (safetensors) atomically: a killed run leaves no half file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({n: t.detach().contiguous().cpu().clone() for n, t in zip(names, tensors)}, str(tmp),
              metadata=metadata)
    tmp.replace(path)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def persisted_steps(run_dir: Path) -> list[int]:
    """Steps of a run whose D and G before/after snapshots are all on disk, ascending."""
    from ganrobust.runs import SNAPSHOT_KINDS, snapshot_file

    run = Path(run_dir)
    steps = []
    for path in (run / "snapshots").glob("d_*.safetensors"):
        m = re.fullmatch(r"d_(\d+)\.safetensors", path.name)
        if m and all((run / snapshot_file(int(m.group(1)), kind)).exists() for kind in SNAPSHOT_KINDS):
            steps.append(int(m.group(1)))
    return sorted(steps)
