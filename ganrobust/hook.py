"""``ganrobust.watch``: one line added to a GAN training loop, nothing else changed.

    with ganrobust.watch(netG, netD, "runs/dcgan"):
        for real in loader:
            ...                      # the loop exactly as it was
            optimizerD.step()
            ...
            optimizerG.step()

The hook observes the loop through PyTorch's global optimizer step hooks and recognises G's
and D's optimizers by parameter identity, so it needs nothing about them. At G's optimizer
*pre*-hook it snapshots D (so WGAN clipping or an EMA applied after ``opt_d.step()`` is part
of the D that G's step is taken against) and, on measured steps, generates the probes with
G before the step; at G's *post*-hook it generates them again and measures the update
against that snapshot; at the next pre-hook after D moved, it checks whether the flips persist.
The loop's forwards tell the latents of the step itself, where the adapter says they enter G,
and the step's phase (``Gmain``, or ``Greg`` for a regulariser step whose loss does not go
through D): :mod:`ganrobust.capture`.

Zero interference: everything runs on shadow copies of G and D loaded from snapshots, under
``no_grad`` (input gradients only, on frozen copies), with the global RNG forked. The user's
modules are only read; training is bit-identical with and without the hook (tested).

This module is the façade that wires the parts (:mod:`ganrobust.watching`): the observer turns
the hooks into events, the snapshot store keeps D's ring and the shadow copies, the conductor
takes a step through the pure measurer, the sharding (under torch.distributed every rank
measures its share of the probes, gathered on rank 0: README, "Many processes and GPUs") and
the sink (the run store, TensorBoard, the checkpoint), which rank 0 alone holds.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganrobust.attacks.precision import precision_record
from ganrobust.config import WatchConfig
from ganrobust.conventions import BatchNormMode, ScoreKind
from ganrobust.errors import InputError
from ganrobust.gan_call import DEFAULT, GanCall, gan_call_for
from ganrobust.module_state import observed_bn
from ganrobust.recipes import model_recipe
from ganrobust.runs import RunWriter
from ganrobust.scorer import Scorer
from ganrobust.watching.conductor import StepConductor
from ganrobust.watching.guards import Guard
from ganrobust.watching.observer import GStepEnded, GStepStarts, LoopObserver
from ganrobust.watching.overlap import Scheduler
from ganrobust.watching.shadows import SnapshotStore
from ganrobust.watching.sharding import Sharding
from ganrobust.watching.sinks import RunSink, run_manifest

BN_WORDS = {BatchNormMode.BATCH: "batch statistics (D is in training mode during G's step)",
            BatchNormMode.EVAL: "running statistics (D is in eval mode during G's step)"}


class WatchNotice(UserWarning):
    """Something ``ganrobust.watch`` observed about the loop and tells once (not an error)."""


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel/DataParallel/FSDP-style wrappers."""
    while isinstance(getattr(module, "module", None), nn.Module):
        module = module.module
    return module


def describe(module: nn.Module, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """An architecture reference: import path and constructor arguments (:mod:`ganrobust.recipes`)."""
    return model_recipe(module, kwargs)


class Watcher:
    """The handle ``watch`` returns: a context manager; :meth:`close` ends the run."""

    def __init__(self, G: nn.Module, D: nn.Module, run_dir: str | Path, config: WatchConfig, *,
                 real: torch.Tensor | None = None, latent_shape: tuple[int, ...] | None = None,
                 tensorboard: str | Path | None = None, call: GanCall = DEFAULT,
                 generator_kwargs: dict[str, Any] | None = None, discriminator_kwargs: dict[str, Any] | None = None
                 ) -> None:
        self.call, self.config = call, config
        live_g, live_d = unwrap(G), unwrap(D)
        # under torch.distributed every rank hooks and measures its shard of the probes; the
        # records are gathered on rank 0, which alone writes (DDP replicas of D are identical)
        self.sharding = Sharding(live_g, live_d)
        self.ctx = self.sharding.ctx
        self.writes = self.ctx.is_main
        self.G, self.D = self.sharding.G, self.sharding.D
        self._closed = False
        if call.conditional and config.kind is ScoreKind.CRITIC and config.tau is None:
            raise InputError("a conditional critic (WGAN) D cannot calibrate tau on unlabelled real samples: pass tau=")
        if config.kind is ScoreKind.CRITIC and config.tau is None and real is None:
            raise InputError("a critic (WGAN) D needs real samples to calibrate tau: pass real=<batch of real data> "
                             "or tau=")
        self.observer = LoopObserver(live_g, live_d, call, on_start=self._g_step_starts, on_end=self._g_step_ended,
                                     listening=lambda: not self.guard.stopped)
        self.store = SnapshotStore(self.G, self.D, config, call,
                                   keep_theta_next=self.ctx.sharded and not self.sharding.fsdp)
        # bn='auto': D's BatchNorm mode is observed on the live D at G's optimizer pre-hook
        # (:meth:`_observe_bn`); until then, and for a D without batch statistics, running statistics
        self._bn_observed: BatchNormMode | None = None
        self._d_has_bn = any(isinstance(m, _BatchNorm) for m in self.D.modules())
        self.scorer = Scorer.of(self.store.shadow_d, config.score(self.call), self.call)
        # overlap: measurements run on a background thread, in step order (one process only); under
        # 'auto' the first measurement runs here and checks that it leaves the global RNG alone
        self.scheduler = Scheduler(config.overlap, sharded=self.ctx.sharded, device=self._device())
        self.sink: RunSink | None = None
        if self.writes:
            self._recipes = {"generator": describe(self.G, generator_kwargs),
                             "discriminator": describe(self.D, discriminator_kwargs)}
            self.sink = RunSink(run_dir, run_manifest(
                config, precision=precision_record(config.precision, self.scorer.device), models=self._recipes,
                gan_call=self.call.record(), snapshot_bytes=self.store.nbytes,
                distributed=self.sharding.record(self.scorer),
                overlap=self.scheduler.record), tensorboard)
        self.guard = Guard(self.ctx, self._device, lambda: self.observer.g_step,
                           None if self.sink is None else self.sink.append)
        self.steps = StepConductor(config, call, self.sharding, self.store, self.scorer, self.guard, self.sink,
                                   real=real)
        if latent_shape is not None:
            self.steps.init_probes(tuple(latent_shape), torch.float32, self._device())
        self.observer.start()

    @property
    def writer(self) -> RunWriter | None:
        """Rank 0's run writer (None on the other ranks)."""
        return None if self.sink is None else self.sink.writer

    @property
    def g_step(self) -> int:
        """Generator steps seen so far."""
        return self.observer.g_step

    @property
    def errors(self) -> int:
        """Errors recorded so far (the hook stops measuring at ``guards.MAX_ERRORS``)."""
        return self.guard.errors

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        self.close(error=None if exc is None else f"{exc_type.__name__}: {exc}")  # type: ignore[union-attr]

    @property
    def run_dir(self) -> Path:
        if self.sink is None:
            raise AttributeError(f"rank {self.ctx.rank} writes no run directory: rank 0 does")
        return self.sink.dir

    def close(self, error: str | None = None) -> None:
        """Remove every hook, write ``checkpoint.pt`` and mark the run complete (idempotent).

        With ``error`` (the loop raised) the run is marked ``stopped`` with the reason instead:
        everything measured so far is kept, and readers say the run did not finish.
        """
        if self._closed:
            return
        self._closed = True
        self.observer.stop()
        self.scheduler.close()  # every submitted measurement written first
        self.sharding.sync("G", "D")  # every rank: the checkpoint's full state (FSDP2)
        if self.sink is None:  # not rank 0
            return
        self.sink.write_checkpoint(self.G, self.D, self.observer.optimizer("G"), self.observer.optimizer("D"),
                                   arch=self._recipes, gan_call=self.call.record(), bounds=self.config.bounds,
                                   generator_steps=self.g_step, device=self._device())
        self.sink.close(error, generator_steps=self.g_step, measured_steps=self.steps.measured, errors=self.errors)

    def _device(self) -> torch.device:
        for p in self.G.parameters():
            return p.device
        return torch.device("cpu")

    # -- the events ------------------------------------------------------------------
    def _g_step_starts(self, event: GStepStarts) -> None:
        """G's pre-hook: D_t into the ring, the pending step's persistence, and on a measured step
        θ, the probes through G_θ and the step's own batch (:meth:`StepConductor.capture`)."""
        step, steps = event.step, self.steps
        measured = steps.is_measured(step)
        snapshot: list[torch.Tensor] | None = None
        with self.guard.step("snapshot"):
            if measured or steps.pending is not None:  # the same on every rank
                if self.config.bn is BatchNormMode.AUTO:
                    self._observe_bn(step)
                self.sharding.sync(*(("D", "G") if measured else ("D",)))  # FSDP2: D_t (and θ)
            snapshot = self.store.take_d(step)  # D_t, as G's step sees it
            if measured or steps.pending is not None:
                self.sharding.from_rank0(snapshot)
        if steps.pending is not None and event.d_steps:  # on every rank alike: it ends in a gather
            # (a G step with D unchanged since, such as StyleGAN's Greg after Gmain, leaves it waiting)
            pending, steps.pending = steps.pending, None
            with self.guard.step("persistence"):
                self.scheduler.persists(steps, pending, snapshot, event.d_steps)
        if not measured or snapshot is None:
            return
        seen: tuple[torch.Tensor, torch.Tensor | None] | None = None
        train_error: str | None = None
        with self.guard.train() as failed:  # the step's own batch: its failure never costs the probes
            seen = self.observer.latents()
        if failed:
            train_error = failed[0]
        with self.guard.step("snapshot"):
            steps.capture(event, seen, train_error)
        current = steps.current
        if current is None or current.step != step or seen is None:
            return
        with self.guard.train() as failed:
            current.train = steps.train_batch(seen)
        if failed:
            current.train_error = failed[0]

    def _g_step_ended(self, event: GStepEnded) -> None:
        """G's post-hook: θ' and the measurement, here or on the measurement thread."""
        step, steps = event.step, self.steps
        if steps.is_measured(step):
            with self.guard.step("snapshot"):
                self.sharding.sync("G")  # θ', after the step (FSDP2)
                theta_next = self.store.take_theta_next()  # DDP: rank 0's θ'
                if theta_next is not None:
                    self.sharding.from_rank0(theta_next)
        current, steps.current = steps.current, None
        if current is not None and current.step != step:
            current = None
        if current is None and not (self.ctx.sharded and steps.is_measured(step)):
            return
        # sharded, every rank enters the measurement's gather at a measured step, with or without
        # its own part (a rank whose snapshot failed brings the failure): none is left waiting
        with self.guard.step("measurement"):
            self.scheduler.measure(steps, current, step)

    def _observe_bn(self, step: int) -> None:
        """``bn='auto'``: score D the way G's step sees it — with batch statistics when the live D's
        BatchNorm layers normalise with the batch's (training mode), else with running statistics.
        Recorded in the manifest (``score.bn``, ``score.bn_from``) and told once, and again if it changes."""
        mode = observed_bn(self.sharding.live[1])
        if mode is self._bn_observed:
            return
        before, self._bn_observed = self._bn_observed, mode
        self.scorer.bn = mode
        if self.sink is not None:
            self.sink.write_manifest(score=self.sink.update_score(bn=mode.value, bn_from="observed"),
                                     distributed=self.sharding.record(self.scorer))
        if self.ctx.is_main and self._d_has_bn:  # without BatchNorm both modes agree: nothing to tell
            words = BN_WORDS[mode]
            try:
                warnings.warn(f"ganrobust.watch: D's BatchNorm scores with {words} at generator step {step} "
                              f"(observed: bn='{mode.value}'" + (f", was '{before.value}'" if before else "") +
                              "); recorded in manifest.json and every step", WatchNotice, stacklevel=5)
            except WatchNotice:  # warnings turned into errors: a notice must not cost the step its measurement
                pass


def watch(G: nn.Module, D: nn.Module, run_dir: str | Path, *, config: WatchConfig | None = None,
          real: torch.Tensor | None = None, latent_shape: tuple[int, ...] | None = None,
          tensorboard: str | Path | None = None, num_classes: int | None = None, call: GanCall | None = None,
          generator_kwargs: dict[str, Any] | None = None, discriminator_kwargs: dict[str, Any] | None = None,
          **options: Any) -> Watcher:
    """Start watching a training loop; returns a :class:`Watcher` (use ``with`` or ``.close()``).

    Args:
        G, D: the generator and discriminator (DDP wrappers are unwrapped, FSDP2 ones mirrored; every
            rank measures its share of the probes, rank 0 alone writes).
        run_dir: where the run directory is written.
        config: a :class:`WatchConfig`; keyword ``options`` override its fields
            (``every=1``, ``n_probes=256``, ``kind="prob"``, ``bounds=(0, 1)``, ...).
        real: a batch of real samples, needed to calibrate ``tau`` for a critic (WGAN) D.
        latent_shape: the shape of one latent (``(nz,)`` or ``(nz, 1, 1)``) when G's forward
            does not take the latent batch as its first argument.
        tensorboard: a log directory for TensorBoard scalars (``ganrobust/aar``, ...) per measured
            step; needs the ``tensorboard`` package (the ``tensorboard`` extra).
        num_classes: a class-conditional GAN, ``G(z, y)`` and ``D(x, y)`` with integer labels
            ``y`` in ``0..num_classes-1``: probe labels are drawn uniformly from the probe seed
            and stored with the probes; rates are also broken down by class.
        call: any other calling convention, a :class:`ganrobust.gan_call.GanCall` (e.g.
            ``StyleGANCall(c_dim)``, ``BigGANCall(K)``); overrides ``num_classes``. By default StyleGAN's
            networks (``z_dim``, ``c_dim``, ``img_resolution``) get ``StyleGANCall``, others ``GanCall``.
        generator_kwargs, discriminator_kwargs: G's and D's constructor arguments (JSON values), recorded
            so that ``audit``/``compare`` of the run rebuild the networks with no option; without them
            a ``config`` dict or StyleGAN's ``init_kwargs`` attribute is recorded when the model has one.
    """
    cfg = (config or WatchConfig()).replace(**options) if options else (config or WatchConfig())
    gan_call = call if call is not None else gan_call_for(unwrap(G), unwrap(D), num_classes)
    return Watcher(G, D, run_dir, cfg, real=real, latent_shape=latent_shape, tensorboard=tensorboard, call=gan_call,
                   generator_kwargs=generator_kwargs, discriminator_kwargs=discriminator_kwargs)
