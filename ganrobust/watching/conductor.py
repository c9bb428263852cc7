"""One measured generator step conducted through the hook's parts: the snapshot store makes the
probes before and after the step, each rank measures its rows (:mod:`ganrobust.watching.measurer`),
the rows are gathered on rank 0 (:mod:`ganrobust.watching.sharding`), which writes the record
(:mod:`ganrobust.watching.sinks`); and D's next update tells whether the step's flips persisted.

Every rank calls :meth:`StepConductor.measure` and :meth:`StepConductor.resolve_persists` at the
same hooks, with or without its own part, so every rank enters each gather in the same order.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ganrobust.attacks.precision import precision_record
from ganrobust.config import WatchConfig
from ganrobust.distributed import item_seed
from ganrobust.errors import InputError
from ganrobust.gan_call import GanCall
from ganrobust.runs.step_inputs import copy_optimizer_state
from ganrobust.scorer import Scorer, with_threshold
from ganrobust.watching.guards import Guard
from ganrobust.watching.measurer import (later_scores, min_norm_attack, persists_record, probe_rows, step_record,
                                         train_rows)
from ganrobust.watching.observer import GStepStarts
from ganrobust.watching.shadows import SnapshotStore
from ganrobust.watching.sharding import Sharding
from ganrobust.watching.sinks import RunSink
from ganrobust.watching.steps import CapturedStep, HandedOver, PendingStep, RankMeasurement, RankRows, TrainBatch


class StepConductor:
    """The measured steps of one watch: the probes ``Z`` (and conditions ``C``), the step captured at
    G's pre-hook (``current``) and the step waiting for D's next update (``pending``)."""

    def __init__(self, config: WatchConfig, call: GanCall, sharding: Sharding, store: SnapshotStore, scorer: Scorer,
                 guard: Guard, sink: RunSink | None, *, real: torch.Tensor | None) -> None:
        self.config, self.call, self.sharding, self.store = config, call, sharding, store
        self.scorer, self.guard, self.sink = scorer, guard, sink
        self.real = None if real is None else real.detach().clone()
        self.min_norm = min_norm_attack(config)
        self.Z: torch.Tensor | None = None
        self.C: torch.Tensor | None = None  # the probes' conditions (conditional GANs)
        self.measured = 0
        self.current: CapturedStep | None = None
        self.pending: PendingStep | None = None

    def is_measured(self, step: int) -> bool:
        return step % self.config.every == 0 or step % self.config.snapshot_every == 0

    def is_persisted(self, step: int) -> bool:
        return step % self.config.snapshot_every == 0 or self.config.persist_measured

    def init_probes(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        """The held-out probes, drawn from the probe seed (saved with their conditions on rank 0)."""
        gen = torch.Generator().manual_seed(self.config.seed)
        self.Z, self.C = self.call.sample(self.config.n_probes, shape, gen, device, dtype)
        if self.sink is not None:
            self.sink.save_probes(self.Z, self.C)

    # -- G's pre-hook: the step before it is taken -------------------------------------------------
    def capture(self, event: GStepStarts, seen: tuple[torch.Tensor, torch.Tensor | None] | None,
                train_error: str | None) -> None:
        """``current``: θ and ``x = G_θ(Z)`` (the probes drawn at the first measured step, shaped like
        the latents seen) and, when the step is persisted, G's optimizer state before it."""
        if self.Z is None:
            if seen is None:
                why = f" ({train_error})" if train_error else ""
                raise InputError(f"no latent batch was seen in G's forward{why}; pass latent_shape= to watch()")
            self.init_probes(tuple(seen[0].shape[1:]), seen[0].dtype, seen[0].device)
        if self.sink is not None and seen is not None and "g_batch" not in self.sink.manifest["score"]:
            # the latent batch of G's steps (this process's, under DDP): what an audit replays
            self.sink.write_manifest(score=self.sink.update_score(g_batch=int(seen[0].shape[0])))
        theta = self.store.take_theta()  # θ, before the step
        self.sharding.from_rank0(theta)
        self.current = CapturedStep(step=event.step, phase=event.phase, d_steps=event.d_steps,
                                    x=self.store.generate(theta, self.Z, self.C), train_error=train_error)
        if self.is_persisted(event.step) and self.config.persist_optimizer and not self.sharding.fsdp:
            # G's optimizer before its step: what replaying this step (and the next k) needs
            self.current.optimizer = (type(event.optimizer).__name__, copy_optimizer_state(event.optimizer))

    def train_batch(self, seen: tuple[torch.Tensor, torch.Tensor | None]) -> TrainBatch:
        """The step's own latents, cloned, and ``G_θ`` of them."""
        z, c = (None if t is None else t.detach().clone() for t in seen)
        if self.call.conditional and c is None:
            raise ValueError("the step's conditions were not seen in G's forward (the adapter's latents_of "
                             "found none)")
        return TrainBatch(z, c, self.store.generate(self.store.theta, z, c))

    # -- G's post-hook: the measurement ----------------------------------------------------------
    def measure(self, current: CapturedStep | None, step: int) -> None:
        """Each rank measures its probe rows (and its own training batch); rank 0 merges the rows
        back into probe order, summarises the whole batch and writes the record. ``current`` is None
        on a rank whose pre-hook failed: it brings the failure to the gather."""
        cfg = self.config
        started = time.perf_counter()
        local: RankMeasurement | None = None
        error: str | None = None
        try:
            if current is None:
                raise RuntimeError("this rank has no snapshot of the step (its pre-step hook failed)")
            local = self._measure_rows(current)
        except Exception as err:
            if not self.sharding.ctx.sharded:
                raise
            error = f"{type(err).__name__}: {err}"
        parts = self.sharding.gather(None if local is None else local.shipped, error)
        assert local is not None and current is not None  # else gather raised RankFailed on every rank
        if current.handed is not None:  # on the measurement thread: the entry the hook already holds gets the flips
            current.handed.pending.fill(local.x_next, local.rows, local.flip)
        else:
            self.pending = PendingStep(step, local.x_next, local.rows, local.flip)
        self.measured += 1
        if parts is None or self.sink is None:  # not rank 0
            return
        record = self.sink.save_arrays(step_record(
            parts, self.call, step=step, n_probes=cfg.n_probes, width=self.scorer.bounds.width,
            d_steps=current.d_steps, tau=local.tau, phase=current.phase, bn=self.scorer.bn.value, C=self.C))
        if self.is_persisted(step):
            record.snapshots = self._persist(step, local.snapshot, current)
        record.seconds = time.perf_counter() - started
        if self.measured == 1 and cfg.precision == "auto":  # the timing that chose it, on this D and batch
            self.sink.write_manifest(precision=precision_record(cfg.precision, current.x.device,
                                                                scorer=self.scorer, x=current.x))
        self.sink.append(record)
        if "batch_coupling" not in self.sink.manifest and self.scorer.coupling is not None:
            self.sink.write_manifest(batch_coupling=self.scorer.coupling_record())  # measured once, on the probes
        self.sink.scalars(step, record.probe)

    def _measure_rows(self, current: CapturedStep) -> RankMeasurement:
        """This rank's part of the measurement of ``current``'s step: its probe rows, scored against
        the snapshot with the whole batch generated (G's batch statistics) and every random draw
        keyed by the probe's row, so the merged result does not depend on the number of ranks."""
        cfg, step, handed, ctx = self.config, current.step, current.handed, self.sharding.ctx
        after = self.store.after
        x_next = handed.x_next if handed is not None else self.store.generate(after, self.Z, self.C)  # θ'
        snapshot = handed.snapshot if handed is not None else self.store.d_of(step)
        self.store.load_d(snapshot)
        scorer = with_threshold(self.scorer, self.real, current.x, tau_given=cfg.tau is not None)
        with_min_norm = self.min_norm is not None and self.measured % cfg.min_norm_every == 0
        # a batch-coupled D (minibatch std) is measured on the whole batch: coupling measured first, on the probes
        scorer.on(self.C).check_batch(current.x)
        rows = self.sharding.rows(cfg.n_probes, self.scorer)
        shipped = RankRows(rows=rows.numpy(), probe=None, train_error=current.train_error)
        flip = np.zeros(0, dtype=bool)
        if len(rows):
            shipped.probe = probe_rows(scorer, self.call, cfg, step=step, x=current.x, x_next=x_next, rows=rows,
                                       C=self.C, min_norm=self.min_norm if with_min_norm else None,
                                       sharded=ctx.sharded)
            flip = shipped.probe["flip"]
        # this rank's own training batch (under DDP: its share; under FSDP2 rank 0's alone, the
        # only rank holding the full state)
        if current.train is not None and (ctx.is_main or not self.sharding.fsdp):
            with self.guard.train() as failed:
                train = current.train
                x_train_next = (handed.x_train_next if handed is not None and handed.x_train_next is not None
                                else self.store.generate(after, train.z, train.c))
                seed = cfg.seed + step if ctx.is_main else item_seed(cfg.seed + step, ctx.rank)
                shipped.train = train_rows(scorer, self.call, cfg, seed=seed, x=train.x, x_next=x_train_next,
                                           c=train.c)
            if failed:
                shipped.train_error = failed[0]
        return RankMeasurement(shipped, x_next, rows, flip, scorer.tau, snapshot)

    def _persist(self, step: int, snapshot: list[torch.Tensor], current: CapturedStep) -> dict[str, str]:
        """D_t, θ and θ' (the copies handed over under ``overlap``), G's optimizer state before the
        step and the step's own latents, written by the sink."""
        handed = current.handed
        theta = handed.theta if handed is not None and handed.theta is not None else self.store.theta
        theta_next = (handed.theta_next if handed is not None and handed.theta_next is not None
                      else self.store.g_view.tensors)
        train = None if current.train is None else (current.train.z, current.train.c)
        assert self.sink is not None
        return self.sink.persist(step, (self.store.d_view.names, snapshot), self.store.g_view.names, theta,
                                 theta_next, current.optimizer, train)

    def hand_over(self, current: CapturedStep, wait: Callable[[], None]) -> None:
        """``overlap``: G_θ'(Z) (and the training batch's), a copy of D_t and, when the step is
        persisted, copies of θ and θ' into ``current``: what the measurement thread needs of the live
        models. ``wait`` lets the thread finish what it holds before the shadow D is used here."""
        step, view = current.step, self.store.g_view
        x_next = self.store.generate(view.tensors, self.Z, self.C)
        x_train_next = None
        if current.train is not None:
            with self.guard.train() as failed:
                x_train_next = self.store.generate(view.tensors, current.train.z, current.train.c)
            if failed:
                current.train, current.train_error = None, failed[0]
        snapshot = [t.clone() for t in self.store.d_of(step)]
        if self.scorer.coupling is None:  # once: its check seeds the RNG, which only this thread may do
            wait()  # nothing in flight uses the shadow D
            self.store.load_d(snapshot)
            self.scorer.on(self.C).check_batch(current.x)
        theta = theta_next = None
        if self.is_persisted(step):
            theta, theta_next = [t.clone() for t in self.store.theta], [t.clone() for t in view.tensors]
        self.pending = pending = PendingStep(step)  # the flips arrive with the measurement
        current.handed = HandedOver(x_next, snapshot, pending, x_train_next, theta, theta_next)

    # -- D's next update: persistence -----------------------------------------------------------
    def resolve_persists(self, pending: PendingStep, snapshot: list[torch.Tensor] | None, d_steps: int) -> None:
        """D_{t+1}(x') on the pending step's rows, gathered; rank 0 writes the ``persists`` record."""
        if d_steps == 0:  # D did not move: nothing to learn about persistence (same on every rank)
            return
        local: tuple[np.ndarray, np.ndarray, float | None] | None = None
        error: str | None = None
        try:
            if snapshot is None:
                raise RuntimeError("this rank has no snapshot of D_{t+1}")
            assert pending.x_next is not None and pending.rows is not None and pending.flip is not None
            self.store.load_d(snapshot)
            # D_{t+1}'s own threshold: calibrated on this snapshot with the samples it now sees
            # (G after the step), never D_t's carried over — a critic's scores drift freely
            scorer = with_threshold(self.scorer, self.real, pending.x_next, tau_given=self.config.tau is not None)
            local = (later_scores(scorer, self.call, x_next=pending.x_next, rows=pending.rows, C=self.C),
                     pending.flip, scorer.tau)
        except Exception as err:
            if not self.sharding.ctx.sharded:
                raise
            error = f"{type(err).__name__}: {err}"
        parts = self.sharding.gather(local, error)
        if parts is None or self.sink is None:
            return
        self.sink.append(persists_record(parts, step=pending.step, d_steps=d_steps))
