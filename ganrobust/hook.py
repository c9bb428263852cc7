"""``ganrobust.watch``: one line added to a GAN training loop, nothing else changed.
(One module: the Watcher is one state machine across the optimizer hooks — snapshot at G's
pre-hook, measure at its post-hook, persistence at the next pre-hook — that splitting would scatter.)

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
against that snapshot. The loop's forwards tell the latents of the step itself, where the
adapter says they enter G, and the step's phase (``Gmain``, or ``Greg`` for a regulariser step
whose loss does not go through D): :mod:`ganrobust.capture`.

Zero interference: everything runs on shadow copies of G and D loaded from snapshots, under
``no_grad`` (input gradients only, on frozen copies), with the global RNG forked. The user's
modules are only read; training is bit-identical with and without the hook (tested).

Under torch.distributed (DDP, FSDP2) every rank hooks its own optimizers and measures its share
of the probes; the rows are gathered on rank 0, which alone writes the run (``ganrobust.distributed``;
README, "Many processes and GPUs").
"""

from __future__ import annotations

import contextlib
import time
import traceback
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ganrobust import metrics
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.precision import precision_record
from ganrobust.background import MeasurementThread, overlap_decision
from ganrobust.capture import ForwardCapture
from ganrobust.config import HOOK_MIN_NORM_BISECTIONS, WatchConfig
from ganrobust.conventions import BatchNormMode, ScoreKind
from ganrobust.gan_call import DEFAULT, GanCall, gan_call_for
from ganrobust.distributed import (Context, RankFailed, current, is_fsdp, item_seed, load_full_state, merge_rows,
                                   unsharded_copy)
from ganrobust.measure.update import by_class, eps_star_diagnostics, measure_update, persistence
from ganrobust.metrics import summarize
from ganrobust.module_copy import copy_module
from ganrobust.module_state import evaluation_state, fixed_noise, observed_bn, preserved_rng, rng_draws_seen
from ganrobust.recipes import model_recipe
from ganrobust.records import ErrorRecord, PersistsRecord, StepRecord
from ganrobust.runs import RunWriter
from ganrobust.runs.step_inputs import copy_optimizer_state, step_input_states
from ganrobust.scorer import Scorer, with_threshold
from ganrobust.snapshots import SnapshotRing, StateView
from ganrobust.errors import InputError

MAX_ERRORS = 3
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
        self.call = call
        self.config = config
        self._tb: Any = None
        self.G, self.D = unwrap(G), unwrap(D)
        # under torch.distributed every rank hooks and measures its shard of the probes; the
        # records are gathered on rank 0, which alone writes (DDP replicas of D are identical)
        self.ctx: Context = current()
        self.active = True
        self.writes = self.ctx.is_main
        self.writer: RunWriter | None = None
        # FSDP2 (fully_shard): the parameters are shards; the hook works on unsharded mirrors whose
        # full state is gathered to rank 0 (get_model_state_dict, cpu_offload) when it needs it
        self._live = (self.G, self.D)
        self._fsdp = is_fsdp(self.G) or is_fsdp(self.D)
        if self._fsdp:
            self.G, self.D = unsharded_copy(self.G), unsharded_copy(self.D)
            self._sync("G", "D")
        self.g_step = 0
        self.d_steps_since = 0
        self._d_steps_before = 0
        self.errors = 0
        self._closed = False
        self._handles: list[Any] = []
        if call.conditional and config.kind is ScoreKind.CRITIC and config.tau is None:
            raise InputError("a conditional critic (WGAN) D cannot calibrate tau on unlabelled real samples: pass tau=")
        if config.kind is ScoreKind.CRITIC and config.tau is None and real is None:
            raise InputError("a critic (WGAN) D needs real samples to calibrate tau: pass real=<batch of real data> "
                             "or tau=")
        self._g_ids = {id(p) for p in self._live[0].parameters()}  # what the user's optimizers hold
        self._d_ids = {id(p) for p in self._live[1].parameters()}
        if self._g_ids & self._d_ids:
            raise InputError("G and D share parameters; pass the generator and discriminator modules separately")
        self._kinds: "weakref.WeakKeyDictionary[torch.optim.Optimizer, str | None]" = weakref.WeakKeyDictionary()
        self._optimizers: dict[str, "weakref.ref[torch.optim.Optimizer]"] = {}

        self._d_view, self._g_view = StateView(self.D), StateView(self.G)
        self._ring = SnapshotRing(self._d_view, config.ring_size)
        self._theta = self._g_view.empty_like()
        # DDP: θ' as rank 0 has it (the live G's buffers move with each rank's own batch)
        self._theta_next = self._g_view.empty_like() if self.ctx.sharded and not self._fsdp else None
        self._shadow_d = copy_module(self.D).requires_grad_(False)
        self._shadow_g = copy_module(self.G).requires_grad_(False)
        self._shadow_d_view, self._shadow_g_view = StateView(self._shadow_d), StateView(self._shadow_g)
        # bn='auto': D's BatchNorm mode is observed on the live D at G's optimizer pre-hook
        # (:meth:`_observe_bn`); until then, and for a D without batch statistics, running statistics
        self._bn_observed: BatchNormMode | None = None
        self._d_has_bn = any(isinstance(m, _BatchNorm) for m in self.D.modules())
        self.scorer = Scorer(self._shadow_d, kind=config.kind, tau=config.tau, bounds=config.bounds,
                             bn=BatchNormMode.EVAL if config.bn is BatchNormMode.AUTO else config.bn,
                             box=not getattr(self.call, "raw_output", False))
        self._real = None if real is None else real.detach().clone()
        self._min_norm = (MinimumNormAttack(norm=config.min_norm_norm, bisection_steps=HOOK_MIN_NORM_BISECTIONS,
                                            precision=config.precision)
                          if config.min_norm_every else None)
        self._measured = 0
        self.C: torch.Tensor | None = None  # the probes' conditions (conditional GANs)
        self._current: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self.Z: torch.Tensor | None = None
        # overlap: measurements run on a background thread, in step order (one process only); under
        # 'auto' the first measurement runs here and checks that it leaves the global RNG alone
        use, self._overlap_why = overlap_decision(config.overlap, sharded=self.ctx.sharded, device=self._device())
        self._worker = MeasurementThread() if use else None
        self._overlap_checked = config.overlap != "auto"

        if self.writes:
            self._recipes = {"generator": describe(self.G, generator_kwargs),
                             "discriminator": describe(self.D, discriminator_kwargs)}
            self._open_writer(run_dir, config, self._recipes["generator"], self._recipes["discriminator"], tensorboard)
        if latent_shape is not None:
            self._init_probes(tuple(latent_shape), torch.float32, self._device())
        self._forwards = ForwardCapture(self._live[0], self._live[1], call)
        self._train_warned = False
        self._handles = [
            register_optimizer_step_pre_hook(self._on_pre),
            register_optimizer_step_post_hook(self._on_post),
            self._forwards,
        ]

    def _rows(self) -> torch.Tensor:
        """The probe rows this rank measures: ``i mod world`` when D scores each sample on its own
        (eval-mode BatchNorm), else the whole batch on rank 0 and none elsewhere — under batch
        statistics a probe's score depends on the batch it is scored in, so splitting the batch
        would change the numbers."""
        n = self.config.n_probes
        if not self.ctx.sharded:
            return torch.arange(n)
        if self.scorer.bn is BatchNormMode.EVAL and not self._fsdp and not self.scorer.whole_batch:
            return torch.arange(self.ctx.rank, n, self.ctx.world)
        return torch.arange(n) if self.ctx.is_main else torch.arange(0)

    def _rows_sharded(self) -> bool:
        return self.ctx.sharded and self.scorer.bn is BatchNormMode.EVAL and not self._fsdp

    def _from_rank0(self, state: list[torch.Tensor]) -> None:
        """DDP: make this rank's copy of a snapshot rank 0's, parameters and buffers. DDP broadcasts
        buffers only before each forward, so after G's forward through D every rank's BatchNorm
        running statistics have moved with its own batch; every rank must measure the snapshot rank 0
        persists. Called by every rank at the same place (a collective); FSDP2 mirrors and one
        process have nothing to do."""
        if self.ctx.sharded and not self._fsdp:
            self.ctx.broadcast_(state)

    def _distributed_record(self) -> dict[str, Any] | None:
        return {"world": self.ctx.world, "backend": self.ctx.backend, "fsdp": self._fsdp,
                "probes": "sharded (row i on rank i mod world)" if self._rows_sharded() else "whole batch on rank 0"
                } if self.ctx.sharded else None

    def _observe_bn(self, step: int) -> None:
        """``bn='auto'``: score D the way G's step sees it — with batch statistics when the live D's
        BatchNorm layers normalise with the batch's (training mode), else with running statistics.
        Recorded in the manifest (``score.bn``, ``score.bn_from``) and told once, and again if it changes."""
        mode = observed_bn(self._live[1])
        if mode is self._bn_observed:
            return
        before, self._bn_observed = self._bn_observed, mode
        self.scorer.bn = mode
        if self.writer is not None:
            self.writer.write_manifest(score={**self.writer.manifest["score"], "bn": mode.value, "bn_from": "observed"},
                                       distributed=self._distributed_record())
        if self.ctx.is_main and self._d_has_bn:  # without BatchNorm both modes agree: nothing to tell
            words = BN_WORDS[mode]
            try:
                warnings.warn(f"ganrobust.watch: D's BatchNorm scores with {words} at generator step {step} "
                              f"(observed: bn='{mode.value}'" + (f", was '{before.value}'" if before else "") +
                              "); recorded in manifest.json and every step", WatchNotice, stacklevel=4)
            except WatchNotice:  # warnings turned into errors: a notice must not cost the step its measurement
                pass

    def _sync(self, *which: str) -> None:
        """FSDP2: gather the live model's full state into the mirror (every rank calls it; rank 0
        receives the state). A no-op otherwise: DDP replicas and single processes are full."""
        if self._fsdp:
            for name in which:
                load_full_state(self._live[0 if name == "G" else 1], self.G if name == "G" else self.D)

    def _open_writer(self, run_dir: str | Path, config: WatchConfig, g: dict[str, Any], d: dict[str, Any],
                     tensorboard: str | Path | None) -> None:
        from ganrobust import __version__

        self.writer = RunWriter(run_dir, {
            "ganrobust": __version__, "torch": torch.__version__,
            "config": config.to_dict(),
            "precision": precision_record(config.precision, self.scorer.device),
            "models": {"generator": g, "discriminator": d},
            "data_range": list(config.bounds),
            "score": {"kind": config.kind.value, "tau": config.tau, "g_bn": config.g_bn.value,
                      # bn='auto': None until observed at the first measured step (_observe_bn)
                      "bn": None if config.bn is BatchNormMode.AUTO else config.bn.value,
                      "bn_from": "observed" if config.bn is BatchNormMode.AUTO else "config"},
            "seeds": {"probes": config.seed, "torch_initial_seed": torch.initial_seed()},
            "gan_call": self.call.record(),  # every run: rebuilt by audit and compare
            "snapshot_bytes": {"D": self._d_view.nbytes, "G": self._g_view.nbytes, "ring": self._ring.nbytes},
            "distributed": self._distributed_record(),
            "overlap": {"used": self._worker is not None, "why": self._overlap_why},
        })
        if tensorboard is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InputError("tensorboard= needs the tensorboard package: pip install tensorboard") from None
            self._tb = SummaryWriter(str(tensorboard))

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        self.close(error=None if exc is None else f"{exc_type.__name__}: {exc}")  # type: ignore[union-attr]

    @property
    def run_dir(self) -> Path:
        if self.writer is None:
            raise AttributeError(f"rank {self.ctx.rank} writes no run directory: rank 0 does")
        return self.writer.dir

    def close(self, error: str | None = None) -> None:
        """Remove every hook, write ``checkpoint.pt`` and mark the run complete (idempotent).

        With ``error`` (the loop raised) the run is marked ``stopped`` with the reason instead:
        everything measured so far is kept, and readers say the run did not finish.
        """
        if self._closed:
            return
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._worker is not None:
            self._worker.close()  # every submitted measurement written first
        self._sync("G", "D")  # every rank: the checkpoint's full state (FSDP2)
        if self.writer is None:  # not rank 0
            return
        self._write_checkpoint()
        if self._tb is not None:
            self._tb.close()
        self.writer.close(status="complete" if error is None else "stopped", stopped_by=error,
                          generator_steps=self.g_step, measured_steps=self._measured, errors=self.errors)

    # -- recognising the loop ----------------------------------------------------------
    def _kind(self, optimizer: torch.optim.Optimizer) -> str | None:
        if optimizer not in self._kinds:
            ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
            kind = "G" if ids and ids <= self._g_ids else "D" if ids and ids <= self._d_ids else None
            self._kinds[optimizer] = kind
            if kind:
                self._optimizers[kind] = weakref.ref(optimizer)
        return self._kinds[optimizer]

    def _device(self) -> torch.device:
        for p in self.G.parameters():
            return p.device
        return torch.device("cpu")

    @contextlib.contextmanager
    def _guarded(self, what: str) -> Iterator[None]:
        """Fork the RNG, disable grad, and turn a failure into a recorded error, not a crash."""
        try:
            with preserved_rng(self._device()), torch.no_grad():
                yield
        except Exception as err:  # the user's training must go on
            # sharded: only a failure every rank saw at the same gather (RankFailed) counts, so the
            # count, and with it which hooks run collectives, stays the same on every rank; a failure
            # of this rank alone is carried into the next gather by the step's missing state
            if self.ctx.sharded and not isinstance(err, RankFailed):
                warnings.warn(f"ganrobust.watch: {what} failed on rank {self.ctx.rank} at generator step "
                              f"{self.g_step} ({err})", RuntimeWarning, stacklevel=3)
                return
            self.errors += 1
            if self.writer is not None:
                self.writer.append(ErrorRecord(step=self.g_step, where=what, error=f"{type(err).__name__}: {err}",
                                               traceback=traceback.format_exc()))
            warnings.warn(f"ganrobust.watch: {what} failed at generator step {self.g_step} ({err}); "
                          f"recorded in steps.jsonl" + ("; measurement stopped" if self.errors >= MAX_ERRORS else ""),
                          RuntimeWarning, stacklevel=3)

    # -- the two hooks ---------------------------------------------------------------
    def _on_pre(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if self._kind(optimizer) != "G" or self.errors >= MAX_ERRORS:
            return
        self.g_step += 1
        step = self.g_step
        phase = self._forwards.phase  # Gmain, or Greg: a step whose loss did not go through D
        snapshot: list[torch.Tensor] | None = None
        with self._guarded("snapshot"):
            if self._is_measured(step) or self._pending is not None:  # the same on every rank
                if self.config.bn is BatchNormMode.AUTO:
                    self._observe_bn(step)
                self._sync(*(("D", "G") if self._is_measured(step) else ("D",)))  # FSDP2: D_t (and θ)
            snapshot = self._ring.take(step)  # D_t, as G's step sees it
            if self._is_measured(step) or self._pending is not None:
                self._from_rank0(snapshot)
        if self._pending is not None and self.d_steps_since:  # on every rank alike: it ends in a gather
            # (a G step with D unchanged since, such as StyleGAN's Greg after Gmain, leaves it waiting)
            pending, self._pending = self._pending, None
            with self._guarded("persistence"):
                if self._worker is not None:
                    self._submit_persists(pending, snapshot)
                else:
                    self._resolve_persists(pending, snapshot)
        self._d_steps_before, self.d_steps_since = self.d_steps_since, 0
        if not self._is_measured(step) or snapshot is None:
            return
        seen: tuple[torch.Tensor, torch.Tensor | None] | None = None
        train_error: str | None = None
        with self._train_guarded() as failed:  # the step's own batch: its failure never costs the probes
            seen = self._forwards.latents()
        if failed:
            train_error = failed[0]
        with self._guarded("snapshot"):
            if self.Z is None:
                if seen is None:
                    raise InputError(f"no latent batch was seen in G's forward{f' ({train_error})' if train_error else ''}; "
                                     f"pass latent_shape= to watch()")
                self._init_probes(tuple(seen[0].shape[1:]), seen[0].dtype, seen[0].device)
            if self.writer is not None and seen is not None and "g_batch" not in self.writer.manifest["score"]:
                # the latent batch of G's steps (this process's, under DDP): what an audit replays
                self.writer.write_manifest(score={**self.writer.manifest["score"], "g_batch": int(seen[0].shape[0])})
            self._g_view.copy_to(self._theta)  # θ, before the step
            self._from_rank0(self._theta)
            self._current = {"step": step, "phase": phase, "x": self._generate(self._theta, self.Z, self.C),
                             "train": None, "train_error": train_error}
            if self._is_persisted(step) and self.config.persist_optimizer and not self._fsdp:
                # G's optimizer before its step: what replaying this step (and the next k) needs
                self._current["optimizer"] = (type(optimizer).__name__, copy_optimizer_state(optimizer))
        if self._current is None or self._current["step"] != step or seen is None:
            return
        with self._train_guarded() as failed:
            z_train, c_train = (None if t is None else t.detach().clone() for t in seen)
            if self.call.conditional and c_train is None:
                raise ValueError("the step's conditions were not seen in G's forward (the adapter's latents_of "
                                 "found none)")
            self._current["train"] = (z_train, c_train, self._generate(self._theta, z_train, c_train))
        if failed:
            self._current["train_error"] = failed[0]

    @contextlib.contextmanager
    def _train_guarded(self) -> Iterator[list[str]]:
        """Like :meth:`_guarded` for the measurement of the step's own batch, whose failure (an
        adapter that cannot map the loop's arguments back to ``(z, c)``) goes into the step's record
        (``train_error``), warned once, and stops nothing: the probes are measured all the same."""
        failed: list[str] = []
        try:
            with preserved_rng(self._device()), torch.no_grad():
                yield failed
        except Exception as err:  # the user's training and the probe measurement go on
            failed.append(f"{type(err).__name__}: {err}")
            if not self._train_warned:
                self._train_warned = True
                warnings.warn(f"ganrobust.watch: the step's own batch cannot be measured at generator step "
                              f"{self.g_step} ({failed[0]}); the probes are, and steps.jsonl records why "
                              f"(train_error)", RuntimeWarning, stacklevel=3)

    def _on_post(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        kind = self._kind(optimizer)
        if kind in ("G", "D"):
            self._forwards.stepped()  # later forwards belong to the next step
        if kind == "D":
            self.d_steps_since += 1
            return
        if kind != "G" or self.errors >= MAX_ERRORS:
            return
        if self._is_measured(self.g_step):
            with self._guarded("snapshot"):
                self._sync("G")  # θ', after the step (FSDP2)
                if self._theta_next is not None:  # DDP: rank 0's θ'
                    self._g_view.copy_to(self._theta_next)
                    self._from_rank0(self._theta_next)
        current, self._current = self._current, None
        if current is not None and current["step"] != self.g_step:
            current = None
        if current is None and not (self.ctx.sharded and self._is_measured(self.g_step)):
            return
        # sharded, every rank enters the measurement's gather at a measured step, with or without
        # its own part (a rank whose snapshot failed brings the failure): none is left waiting
        with self._guarded("measurement"):
            if self._worker is not None and current is not None and self._overlap_checked:
                self._submit(current)
            elif self._worker is not None and current is not None:
                self._measure_checking_rng(current)
            else:
                self._measure(current)

    def _measure_checking_rng(self, current: dict[str, Any]) -> None:
        """overlap='auto', first measured step: measured here, as the synchronous hook measures it, and
        watched for draws from the global RNG (a D that draws while it is scored). On the thread such
        draws would move the loop's RNG: then every later step is measured here too."""
        with rng_draws_seen() as drew:
            try:
                self._measure(current)
            finally:
                self._overlap_checked = True
        if drew[0]:
            assert self._worker is not None
            self._worker.close()
            self._worker = None
            self._overlap_why = "auto: D drew from the global RNG while it was scored; measured on the training thread"
            warnings.warn(f"ganrobust.watch: {self._overlap_why}", RuntimeWarning, stacklevel=4)
        if self.writer is not None:
            self.writer.write_manifest(overlap={"used": self._worker is not None, "why": self._overlap_why})

    # -- measuring -----------------------------------------------------------------
    def _is_measured(self, step: int) -> bool:
        return step % self.config.every == 0 or step % self.config.snapshot_every == 0

    def _is_persisted(self, step: int) -> bool:
        return step % self.config.snapshot_every == 0 or self.config.persist_measured

    def _init_probes(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(self.config.seed)
        self.Z, self.C = self.call.sample(self.config.n_probes, shape, gen, device, dtype)
        if self.writer is not None:
            self.writer.save_probes(self.Z, self.C)  # conditions travel with the probes

    def _generate(self, theta: list[torch.Tensor], z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        self._shadow_g_view.load(theta)
        with evaluation_state(self._shadow_g, self.config.g_bn), fixed_noise(z.device):  # x, x': one noise draw
            return self.call.generate(self._shadow_g, z, c).detach()

    def _measure(self, current: dict[str, Any] | None) -> None:
        """Each rank measures its probe rows (and its own training batch); rank 0 merges the rows
        back into probe order, summarises the whole batch and writes the record."""
        cfg, step = self.config, self.g_step if current is None else current["step"]
        started = time.perf_counter()
        local: dict[str, Any] | None = None
        error: str | None = None
        try:
            if current is None:
                raise RuntimeError("this rank has no snapshot of the step (its pre-step hook failed)")
            local = self._measure_rows(current)
        except Exception as err:
            if not self.ctx.sharded:
                raise
            error = f"{type(err).__name__}: {err}"
        parts = self.ctx.gather(None if local is None else local["shipped"], error=error)
        assert local is not None and current is not None  # else gather raised RankFailed on every rank
        done = {"step": step, "x_next": local["x_next"], "rows": local["rows"], "flip": local["flip"]}
        if "pending" in current:  # on the measurement thread: the entry the hook already holds gets the flips
            current["pending"].update(done)
        else:
            self._pending = done
        self._measured += 1
        if parts is None:  # not rank 0
            return
        width = self.scorer.bounds.width
        probe_samples = merge_rows([p["probe"] for p in parts], cfg.n_probes)
        probe_summary = summarize(probe_samples, width=width)
        labels = self.call.labels(self.C)
        if labels is not None:  # every metric is per (z, c) probe: rates by class too
            probe_samples["label"] = labels.cpu().numpy()
        record = StepRecord(step=step, d_steps=current.get("d_steps", self._d_steps_before), tau=local["tau"], probe=probe_summary,
                            samples={"probe": self.writer.save_samples(step, "probe", probe_samples)},
                            phase=current["phase"])
        record.extra["bn"] = self.scorer.bn.value  # how D's BatchNorm scored this step (observed under 'auto')
        if labels is not None:
            record.extra["by_class"] = by_class(probe_samples, self.call.classes)
        if "eps_star" in probe_samples and (lost := eps_star_diagnostics(probe_samples)):  # said, with the count
            record.extra["diagnostics"] = [d.to_dict() for d in lost]
        trains = [p["train"] for p in parts if p["train"] is not None]
        train_errors = [p["train_error"] for p in parts if p.get("train_error")]
        if train_errors:  # why the step's own batch has no summary (the probes have theirs)
            record.extra["train_error"] = train_errors[0]
        if trains:
            train_samples = {k: np.concatenate([t[k] for t in trains]) for k in trains[0]}
            record.train = summarize(train_samples, width=width)
            record.samples["train"] = self.writer.save_samples(step, "train", train_samples)
        if self._is_persisted(step):
            record.snapshots = self._persist(step, local["snapshot"], current)
        record.seconds = time.perf_counter() - started
        if self._measured == 1 and cfg.precision == "auto":  # the timing that chose it, on this D and batch
            self.writer.write_manifest(precision=precision_record(cfg.precision, current["x"].device,
                                                                  scorer=self.scorer, x=current["x"]))
        self.writer.append(record)
        if "batch_coupling" not in self.writer.manifest and self.scorer.coupling is not None:
            self.writer.write_manifest(batch_coupling=self.scorer.coupling_record())  # measured once, on the probes
        if self._tb is not None:
            for metric in metrics.view("tensorboard"):
                value = probe_summary[metric.key]["value"]
                if value is not None and value == value:
                    self._tb.add_scalar(f"ganrobust/{metric.key}", value, step)
            self._tb.flush()

    def _measure_rows(self, current: dict[str, Any]) -> dict[str, Any]:
        """This rank's part of the measurement of ``current``'s step: its probe rows, scored against
        the snapshot with the whole batch generated (G's batch statistics) and every random draw
        keyed by the probe's row, so the merged result does not depend on the number of ranks."""
        cfg, step = self.config, current["step"]
        after = self._g_view.tensors if self._theta_next is None else self._theta_next
        x_next = current["x_next"] if "x_next" in current else self._generate(after, self.Z, self.C)  # θ', after the step
        snapshot = current["snapshot"] if "snapshot" in current else self._ring.get(step)
        self._shadow_d_view.load(snapshot)
        scorer = self.scorer
        scorer = with_threshold(scorer, self._real, current["x"], tau_given=cfg.tau is not None)
        with_min_norm = self._min_norm is not None and self._measured % cfg.min_norm_every == 0
        # a batch-coupled D (minibatch std) is measured on the whole batch: coupling measured first, on the probes
        (scorer.conditioned(self.C, self.call) if self.call.binds else scorer).check_batch(current["x"])
        rows = self._rows()
        shipped: dict[str, Any] = {"probe": (rows.numpy(), None), "train": None, "train_error": current["train_error"]}
        flip = np.zeros(0, dtype=bool)
        if len(rows):
            index = rows.to(x_next.device)
            rows_scorer = scorer
            if self.call.binds:  # each probe row scored with its own condition
                rows_scorer = scorer.conditioned(None if self.C is None else self.C.index_select(0, index), self.call)
            probe = measure_update(
                rows_scorer, current["x"][index], x_next[index], eps=cfg.eps, eps_l2=cfg.eps_l2,
                efficiency_steps=cfg.efficiency_steps, noise_draws=cfg.noise_draws,
                min_norm=self._min_norm if with_min_norm else None, min_norm_probes=cfg.min_norm_probes,
                seed=cfg.seed + step, precision=cfg.precision,
                index=index if self.ctx.sharded else None, n_total=cfg.n_probes)
            shipped["probe"] = (rows.numpy(), probe.samples)
            flip = probe.samples["flip"]
        # this rank's own training batch (under DDP: its share; under FSDP2 rank 0's alone, the
        # only rank holding the full state)
        if current["train"] is not None and (self.ctx.is_main or not self._fsdp):
            with self._train_guarded() as failed:
                z_train, c_train, x_train = current["train"]
                x_train_next = (current["x_train_next"] if "x_train_next" in current
                                else self._generate(after, z_train, c_train))
                seed = cfg.seed + step if self.ctx.is_main else item_seed(cfg.seed + step, self.ctx.rank)
                train = measure_update(scorer.conditioned(c_train, self.call) if self.call.binds else scorer,
                                       x_train, x_train_next, eps=cfg.eps, eps_l2=cfg.eps_l2,
                                       efficiency_steps=0, noise_draws=cfg.noise_draws, seed=seed)
                shipped["train"] = train.samples
            if failed:
                shipped["train_error"] = failed[0]
        return {"shipped": shipped, "x_next": x_next, "rows": rows, "flip": flip, "tau": scorer.tau,
                "snapshot": snapshot}

    def _resolve_persists(self, pending: dict[str, Any], snapshot: list[torch.Tensor] | None,
                          d_steps: int | None = None) -> None:
        d_steps = self.d_steps_since if d_steps is None else d_steps
        if d_steps == 0:  # D did not move: nothing to learn about persistence (same on every rank)
            return
        local: tuple[np.ndarray, np.ndarray] | None = None
        error: str | None = None
        tau: float | None = None
        try:
            if snapshot is None:
                raise RuntimeError("this rank has no snapshot of D_{t+1}")
            self._shadow_d_view.load(snapshot)
            scorer = self.scorer
            x_next = pending["x_next"]
            # D_{t+1}'s own threshold: calibrated on this snapshot with the samples it now sees
            # (G after the step), never D_t's carried over — a critic's scores drift freely
            scorer = with_threshold(scorer, self._real, x_next, tau_given=self.config.tau is not None)
            tau = scorer.tau
            rows = pending["rows"].to(x_next.device)
            if self.call.binds:  # the probes' own conditions, row for row
                scorer = scorer.conditioned(None if self.C is None else self.C.index_select(0, rows), self.call)
            s_later = scorer.score(x_next[rows]).cpu().numpy() if len(rows) else np.zeros(0, dtype=np.float32)
            local = (s_later, pending["flip"], tau)
        except Exception as err:
            if not self.ctx.sharded:
                raise
            error = f"{type(err).__name__}: {err}"
        parts = self.ctx.gather(local, error=error)
        if parts is None or self.writer is None:
            return
        s_later = np.concatenate([p[0] for p in parts])
        flip = np.concatenate([p[1] for p in parts])
        tau = parts[0][2]  # the same on every rank: calibrated on the whole probe batch
        self.writer.append(PersistsRecord(step=pending["step"], d_steps=d_steps, tau=tau,
                                          persists=persistence(s_later, flip, tau)))

    def _persist(self, step: int, snapshot: list[torch.Tensor], current: dict[str, Any]) -> dict[str, str]:
        """Write D and G before/after of ``step``, G's optimizer state before it and the step's own
        batch (``ganrobust.runs.step_inputs``; the run store records every SHA-256). ``current`` may
        carry copies of θ and θ' (taken on the training thread under ``overlap=True``)."""
        theta = current.get("theta", self._theta)
        theta_next = current.get("theta_next", self._g_view.tensors)
        names = self.writer.save_snapshots(step, {"D": (self._d_view.names, snapshot),
                                                  "G_before": (self._g_view.names, theta),
                                                  "G_after": (self._g_view.names, theta_next)})
        opt_class, opt_state = current.get("optimizer") or (None, None)
        z_train, c_train = current["train"][:2] if current.get("train") is not None else (None, None)
        return {**names, **self.writer.save_step_inputs(step, step_input_states(
            step, opt_state, opt_class, z_train, c_train))}

    # -- overlap=True: the measurement thread ------------------------------------------
    def _submit(self, current: dict[str, Any]) -> None:
        """What reads the live models happens now, on the training thread (:meth:`_hand_over`); the
        rest of the measurement runs on the measurement thread (ganrobust.background) while training
        goes on."""
        self._hand_over(current)

        def job() -> None:
            with self._guarded("measurement"):
                self._measure(current)

        self._worker.submit(job)  # type: ignore[union-attr]

    def _hand_over(self, current: dict[str, Any]) -> None:
        """G_θ'(Z) (and the training batch's), copies of D_t and, when they are persisted, of θ and θ',
        into ``current``: what the measurement thread needs of the live models."""
        step = current["step"]
        current["x_next"] = self._generate(self._g_view.tensors, self.Z, self.C)
        if current["train"] is not None:
            with self._train_guarded() as failed:
                z_train, c_train, _ = current["train"]
                current["x_train_next"] = self._generate(self._g_view.tensors, z_train, c_train)
            if failed:
                current["train"], current["train_error"] = None, failed[0]
        current["snapshot"] = [t.clone() for t in self._ring.get(step)]
        if self.scorer.coupling is None:  # once: its check seeds the RNG, which only this thread may do
            self._worker.wait()  # type: ignore[union-attr]  # nothing in flight uses the shadow D
            self._shadow_d_view.load(current["snapshot"])
            (self.scorer.conditioned(self.C, self.call) if self.call.binds else self.scorer).check_batch(current["x"])
        if self._is_persisted(step):
            current["theta"] = [t.clone() for t in self._theta]
            current["theta_next"] = [t.clone() for t in self._g_view.tensors]
        current["d_steps"] = self._d_steps_before
        current["pending"] = self._pending = {"step": step}  # the flips arrive with the measurement

    def _submit_persists(self, pending: dict[str, Any], snapshot: list[torch.Tensor] | None) -> None:
        """D_{t+1}(x') on the measurement thread, after step t's measurement (which sets the flips)."""
        if self.d_steps_since == 0:
            return
        d_steps, copy = self.d_steps_since, None if snapshot is None else [t.clone() for t in snapshot]

        def job() -> None:
            if "flip" not in pending:  # step t's measurement failed (recorded): nothing to resolve
                return
            with self._guarded("persistence"):
                self._resolve_persists(pending, copy, d_steps)

        self._worker.submit(job)  # type: ignore[union-attr]

    def _write_checkpoint(self) -> None:
        """``checkpoint.pt`` (weights_only-loadable, G's optimizer class recorded) and its SHA-256."""
        opt_g, opt_d = (self._optimizers.get(k) for k in ("G", "D"))
        checkpoint = {
            "format": "ganrobust.checkpoint/1",
            "G": {k: v.detach().cpu() for k, v in self.G.state_dict().items()},
            "D": {k: v.detach().cpu() for k, v in self.D.state_dict().items()},
            "optimizer_G": None if opt_g is None or opt_g() is None else opt_g().state_dict(),
            "optimizer_D": None if opt_d is None or opt_d() is None else opt_d().state_dict(),
            "optimizer_G_class": None if opt_g is None or opt_g() is None else type(opt_g()).__name__,
            "arch": self._recipes, "gan_call": self.call.record(),
            "score": self.writer.manifest["score"], "data_range": list(self.config.bounds),
            "generator_steps": self.g_step,
        }
        with preserved_rng(self._device()):
            self.writer.write_checkpoint(checkpoint)


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
