"""Run a module without leaving a trace: modes, BatchNorm statistics and RNG come back as they were."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganrobust.conventions import BatchNormMode


@contextlib.contextmanager
def evaluation_state(module: nn.Module, bn: BatchNormMode = BatchNormMode.EVAL) -> Iterator[nn.Module]:
    """Eval mode for every submodule; with ``bn='batch'`` BatchNorm layers normalise with the
    statistics of the batch at hand without tracking (running statistics and
    ``num_batches_tracked`` stay untouched). Every flag is restored on exit."""
    modes = [(m, m.training) for m in module.modules()]
    tracking: list[tuple[_BatchNorm, bool]] = []
    try:
        module.eval()
        if bn is BatchNormMode.BATCH:
            for m in module.modules():
                if isinstance(m, _BatchNorm):
                    tracking.append((m, m.track_running_stats))
                    m.track_running_stats = False
                    m.train()
        yield module
    finally:
        for m, was_tracking in tracking:
            m.track_running_stats = was_tracking
        for m, was_training in modes:
            m.training = was_training


_THREAD = threading.local()


def measurement_thread() -> None:
    """Mark the calling thread as ganrobust's measurement thread (``watch(..., overlap=True)``):
    there :func:`preserved_rng` does not fork. The global RNG is the process's, and restoring it
    from another thread would rewind the training loop's draws; the measurement draws only from
    its own seeded generators, so it needs no fork."""
    _THREAD.no_fork = True


@contextlib.contextmanager
def preserved_rng(device: torch.device | None = None) -> Iterator[None]:
    """Fork the global torch RNG (CPU, and the CUDA device when given) for the block."""
    if getattr(_THREAD, "no_fork", False):
        yield
        return
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=True):
        yield
