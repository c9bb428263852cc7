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


def observed_bn(module: nn.Module) -> BatchNormMode:
    """The BatchNorm mode ``module`` scores in as it is now: ``batch`` when one of its BatchNorm
    layers (BatchNorm1d/2d/3d, SyncBatchNorm, lazy ones) would normalise a forward with the batch's
    statistics (the layer is in training mode, or keeps no running statistics), else ``eval``
    (running statistics; also for a module without BatchNorm, where the two agree)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm) and (m.training or m.running_mean is None):
            return BatchNormMode.BATCH
    return BatchNormMode.EVAL


_THREAD = threading.local()


def measurement_thread() -> None:
    """Mark the calling thread as ganrobust's measurement thread (``watch(..., overlap=True)``):
    there :func:`preserved_rng` does not fork. The global RNG is the process's, and restoring it
    from another thread would rewind the training loop's draws; the measurement draws only from
    its own seeded generators, so it needs no fork."""
    _THREAD.no_fork = True


@contextlib.contextmanager
def rng_draws_seen() -> Iterator[list[bool]]:
    """Yields ``[drew]``, True after the block when something in it drew from the global CPU RNG,
    also inside a :func:`preserved_rng` fork, which hides the draw from the caller
    (``overlap='auto'``'s check: on the measurement thread nothing forks, and such a draw would
    move the training loop's RNG). The deliberate seeding of :func:`fixed_noise` is not a draw."""
    seen, outer = [False], getattr(_THREAD, "draws", None)
    _THREAD.draws = seen
    before = torch.random.get_rng_state()
    try:
        yield seen
    finally:
        _THREAD.draws = outer
        if not torch.equal(before, torch.random.get_rng_state()):
            seen[0] = True
        if outer is not None and seen[0]:
            outer[0] = True


@contextlib.contextmanager
def preserved_rng(device: torch.device | None = None, *, seeds: bool = False) -> Iterator[None]:
    """Fork the global torch RNG (CPU, and the CUDA device when given) for the block (``seeds``:
    the block seeds it on purpose, which :func:`rng_draws_seen` does not count)."""
    if getattr(_THREAD, "no_fork", False):
        if seeds:  # restoring the RNG from this thread would rewind the loop's draws; seeding it, reset them
            raise RuntimeError("the measurement thread cannot seed the global RNG (it is the training loop's)")
        yield
        return
    devices = [device] if device is not None and device.type == "cuda" else []
    draws = None if seeds else getattr(_THREAD, "draws", None)
    with torch.random.fork_rng(devices=devices, enabled=True):
        start = None if draws is None else torch.random.get_rng_state()
        yield
        if start is not None and not torch.equal(start, torch.random.get_rng_state()):
            draws[0] = True  # type: ignore[index]


#: the seed of the one fixed draw that G's own random layers (per-layer noise, StyleGAN's
#: ``noise_mode='random'``) see in every measured generation: x and x' get the same noise
NOISE_SEED = 0


@contextlib.contextmanager
def fixed_noise(device: torch.device | None = None, seed: int = NOISE_SEED) -> Iterator[None]:
    """The global RNG forked and seeded with ``seed`` for the block: every generation under it
    draws the same numbers (a G that redraws noise on each call gives x and x' the same noise),
    and the caller's RNG state is exactly as before."""
    with preserved_rng(device, seeds=True):
        torch.manual_seed(seed)
        yield
