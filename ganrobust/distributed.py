"""Scale-out on ``torch.distributed``, launched by ``torchrun``: the one module that calls it.

    torchrun --nproc-per-node 2 -m ganrobust.cli audit runs/dcgan --snapshots all

Everything a sharded command needs is here, so the hook, the snapshot sweep, ``compare`` and
the CLI each change at one call site:

* :func:`init_from_env` joins the process group ``torchrun`` describes (``WORLD_SIZE``,
  ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): gloo on the CPU, NCCL on the GPU
  (:func:`backend_for`), one process per GPU on ``cuda:LOCAL_RANK``;
* :meth:`Context.shard`: item ``i`` of a list goes to rank ``i mod world`` — the only place a
  rank decides what it computes. Results never depend on it: every random draw is keyed by the
  item (:func:`item_seed`), never by rank or world size;
* :meth:`Context.map`: every rank computes its items, the picklable results are gathered on
  rank 0 in item order (``gather_object``), and the outcome — which rank failed on which item,
  if any — is broadcast back, so a rank that raises makes *every* rank raise
  :class:`RankFailed` at the same collective, at once, instead of leaving the others waiting.
  A rank that dies outright (killed, segfault) is caught by the process group's ``timeout``.

No collective is ever called from a branch that only some ranks take: ``map`` and ``gather``
are called by every rank at the same place with the same items.
"""

from __future__ import annotations

import datetime
import os
from collections import OrderedDict
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ganrobust.config import DIST_TIMEOUT_S

T = TypeVar("T")
R = TypeVar("R")


class RankFailed(RuntimeError):
    """Raised on every rank when any rank failed inside :meth:`Context.map` or :meth:`Context.gather`."""


def backend_for(device: str | torch.device | None) -> str:
    """``nccl`` for a CUDA device (one process per GPU), ``gloo`` for the CPU."""
    return "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` under the run's ``seed``: a function of both and nothing else
    (not of the rank nor of the world size), so a sharded result equals the single-process one."""
    return (int(seed) * 1_000_003 + int(index) * 7_919 + 1) % (2**63 - 1)


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world``; ``world == 1`` is one ordinary process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes reports and run files and prints results."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world > 1

    def device(self, requested: str | torch.device) -> torch.device:
        """``requested``, with a bare ``cuda`` made ``cuda:LOCAL_RANK`` (one process per GPU)."""
        dev = torch.device(requested)
        if dev.type == "cuda" and dev.index is None and self.sharded:
            return torch.device("cuda", self.local_rank)
        return dev

    def shard(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """This rank's ``(index, item)`` pairs: item ``i`` goes to rank ``i mod world``."""
        return [(i, item) for i, item in enumerate(items) if i % self.world == self.rank]

    def gather(self, local: Any, *, error: str | None = None) -> list[Any] | None:
        """Every rank's ``local`` (picklable), in rank order, on rank 0; None on the others.

        ``error``: this rank failed (the message); every rank then raises :class:`RankFailed`
        naming the failed ranks — after the collective, so no rank is left waiting in it.
        """
        if not self.sharded:
            if error is not None:
                raise RankFailed(f"rank 0 failed: {error}")
            return [local]
        payloads: list[Any] | None = [None] * self.world if self.is_main else None
        dist.gather_object((error, local), payloads, dst=0)
        verdict: list[Any] = [None]
        if self.is_main:
            assert payloads is not None
            failed = [f"rank {r} failed: {err}" for r, (err, _) in enumerate(payloads) if err is not None]
            verdict = ["; ".join(failed) or None]
        dist.broadcast_object_list(verdict, src=0)
        if verdict[0] is not None:
            raise RankFailed(verdict[0])
        return [value for _, value in payloads] if payloads is not None else None

    def map(self, items: Sequence[T], fn: Callable[[int, T], R]) -> list[R] | None:
        """``[fn(i, item) for i, item in enumerate(items)]``, sharded: each rank computes its
        items, rank 0 receives the whole list in item order; the other ranks get None.

        An exception in ``fn`` on any rank makes every rank raise :class:`RankFailed` (with the
        failing rank, item and error) once all ranks reach the gather; the failing rank's own
        exception is chained on it.
        """
        local: dict[int, R] = {}
        error: str | None = None
        cause: BaseException | None = None
        for i, item in self.shard(items):
            try:
                local[i] = fn(i, item)
            except Exception as err:  # carried to every rank, raised there after the collective
                error = f"item {i} ({item!r}): {type(err).__name__}: {err}"
                cause = err  # chained on the RankFailed this rank raises: its traceback is kept
                if not self.sharded:
                    raise
                break
        try:
            gathered = self.gather(local, error=error)
        except RankFailed as failed:
            raise failed from cause
        if gathered is None:
            return None
        merged: dict[int, R] = {}
        for part in gathered:
            merged.update(part)
        return [merged[i] for i in range(len(items))]

    def broadcast_(self, tensors: Sequence[torch.Tensor], *, src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s (every rank calls it, with tensors of the
        same shapes and dtypes in the same order); a no-op in one process."""
        if self.sharded:
            for tensor in tensors:
                dist.broadcast(tensor, src=src)

    def barrier(self) -> None:
        if self.sharded:
            dist.barrier()


def current() -> Context:
    """The context of an already initialised default process group (or one plain process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    return Context(rank=dist.get_rank(), world=dist.get_world_size(),
                   local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())), backend=dist.get_backend())


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or the like) with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str | torch.device | None = "cpu", *, timeout_s: float | None = None) -> Context:
    """Join the process group ``torchrun`` set up in the environment, or stay one process.

    Idempotent: an already initialised group (the user's own, under DDP) is used as it is.
    ``timeout_s`` bounds every collective: a rank that died without reaching one makes the
    others fail after at most that long instead of hanging [default: ``GANROBUST_DIST_TIMEOUT``
    from the environment, else ``config.DIST_TIMEOUT_S``].
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched():
        return Context()
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    if timeout_s is None:
        timeout_s = float(os.environ.get("GANROBUST_DIST_TIMEOUT", DIST_TIMEOUT_S))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return current()


def shutdown() -> None:
    """Leave the process group if this module's caller joined one (no-op otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def merge_rows(parts: Sequence[tuple[np.ndarray, dict[str, np.ndarray] | None]], n: int) -> dict[str, np.ndarray]:
    """Per-sample arrays measured in shards, back in row order: ``parts`` holds each rank's
    ``(rows, arrays)`` (arrays None for a rank with no rows); the result has ``n`` rows."""
    filled = [(rows, arrays) for rows, arrays in parts if arrays is not None and len(rows)]
    if not filled:
        raise ValueError("no rank measured any row")
    out = {key: np.empty((n,) + value.shape[1:], dtype=value.dtype) for key, value in filled[0][1].items()}
    seen = np.zeros(n, dtype=bool)
    for rows, arrays in filled:
        seen[rows] = True
        for key, value in arrays.items():
            out[key][rows] = value
    if not seen.all():
        raise ValueError(f"rows {np.flatnonzero(~seen)[:8].tolist()} were measured by no rank")
    return out


def is_fsdp(module: nn.Module) -> bool:
    """Whether ``fully_shard`` (FSDP2) sharded ``module`` or any of its submodules."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return False
    return any(isinstance(m, FSDPModule) for m in module.modules())


def _is_fsdp_hook(hook: Any) -> bool:
    owner = getattr(hook, "__self__", None) or getattr(getattr(hook, "func", None), "__self__", None)
    return owner is not None and type(owner).__module__.startswith("torch.distributed")


def unsharded_copy(module: nn.Module) -> nn.Module:
    """A plain module with ``module``'s structure and full-size parameters (zeros until
    :func:`load_full_state`), its FSDP2 classes and hooks dropped: the hook's mirror of an
    FSDP2 model, which runs without any collective. ``copy.deepcopy`` refuses FSDP modules."""
    from torch.distributed.fsdp import FSDPModule

    cls = type(module)
    if isinstance(module, FSDPModule):  # fully_shard made class FSDP<Name>(FSDPModule, <Name>)
        cls = next(c for c in cls.__mro__[1:] if not issubclass(c, FSDPModule) and issubclass(c, nn.Module))
    new = cls.__new__(cls)
    state = {k: (OrderedDict(v) if isinstance(v, dict) else v) for k, v in module.__dict__.items()
             if not k.startswith(("__composable_api_state_key", "_fsdp", "_is_fsdp"))}  # FSDP2's own state
    for name in ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
                 "_state_dict_pre_hooks", "_load_state_dict_pre_hooks"):
        hooks = state.get(name)
        if isinstance(hooks, dict):
            dropped = {key for key, hook in hooks.items() if _is_fsdp_hook(hook)}
            state[name] = OrderedDict((k, h) for k, h in hooks.items() if k not in dropped)
            for extra in (f"{name}_with_kwargs", f"{name}_always_called", "_forward_hooks_with_kwargs",
                          "_forward_hooks_always_called"):
                if isinstance(state.get(extra), dict):
                    state[extra] = OrderedDict((k, v) for k, v in state[extra].items() if k not in dropped)
    new.__dict__.update(state)

    def local(t: torch.Tensor) -> torch.Tensor:
        return t.to_local() if hasattr(t, "to_local") else t

    new._parameters = {name: None if p is None else
                       nn.Parameter(torch.zeros(p.shape, dtype=p.dtype, device=local(p).device), requires_grad=False)
                       for name, p in module._parameters.items()}
    new._buffers = {name: None if b is None else local(b).detach().clone() for name, b in module._buffers.items()}
    new._modules = {name: None if child is None else unsharded_copy(child) for name, child in module._modules.items()}
    return new


def load_full_state(live: nn.Module, mirror: nn.Module) -> bool:
    """Copy ``live``'s full (unsharded) state into ``mirror`` in place; called on every rank (it
    is a collective: FSDP2 all-gathers each parameter). With ``cpu_offload`` the full state lands
    on rank 0 only, in CPU memory, one parameter at a time: returns whether this rank got it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(live, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not state:
        return False
    with torch.no_grad():
        for key, tensor in mirror.state_dict(keep_vars=True).items():
            tensor.copy_(state[key])
    return True


def payload_bytes(obj: Any) -> int:
    """The size of ``obj`` as ``gather_object`` sends it (pickled): what a rank ships to rank 0."""
    return len(pickle.dumps(obj))
