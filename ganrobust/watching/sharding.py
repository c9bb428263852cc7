"""The hook under torch.distributed: which probe rows this rank measures, rank 0's state on every
rank, FSDP2's mirrors, and the gathers (:mod:`ganrobust.distributed` does the collectives).

Every rank hooks its own optimizers and reaches every collective here at the same place, in the
same order: the broadcast of D_t at G's pre-hook (measured steps, and steps resolving a pending
one), of θ and θ' (measured steps), and the gathers of a measurement and of a persistence check,
entered by every rank with or without its own part. One process has nothing to do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganrobust.conventions import BatchNormMode
from ganrobust.distributed import Context, current, is_fsdp, load_full_state, unsharded_copy
from ganrobust.scorer import Scorer


class Sharding:
    """This process's part: ``ctx`` (rank of world), the live modules and the full G and D the hook
    reads (the live ones, or under FSDP2 unsharded mirrors)."""

    def __init__(self, G: nn.Module, D: nn.Module, ctx: Context | None = None) -> None:
        self.ctx = current() if ctx is None else ctx
        self.live = (G, D)
        # FSDP2 (fully_shard): the parameters are shards; the hook works on unsharded mirrors whose
        # full state is gathered to rank 0 (get_model_state_dict, cpu_offload) when it needs it
        self.fsdp = is_fsdp(G) or is_fsdp(D)
        self.G, self.D = (unsharded_copy(G), unsharded_copy(D)) if self.fsdp else (G, D)
        self.sync("G", "D")

    def sync(self, *which: str) -> None:
        """FSDP2: gather the live model's full state into the mirror (every rank calls it; rank 0
        receives the state). A no-op otherwise: DDP replicas and single processes are full."""
        if self.fsdp:
            for name in which:
                load_full_state(self.live[0 if name == "G" else 1], self.G if name == "G" else self.D)

    def from_rank0(self, state: list[torch.Tensor]) -> None:
        """DDP: make this rank's copy of a snapshot rank 0's, parameters and buffers. DDP broadcasts
        buffers only before each forward, so after G's forward through D every rank's BatchNorm
        running statistics have moved with its own batch; every rank must measure the snapshot rank 0
        persists. Called by every rank at the same place (a collective); FSDP2 mirrors and one
        process have nothing to do."""
        if self.ctx.sharded and not self.fsdp:
            self.ctx.broadcast_(state)

    def rows(self, n: int, scorer: Scorer) -> torch.Tensor:
        """The probe rows this rank measures: ``i mod world`` when D scores each sample on its own
        (eval-mode BatchNorm), else the whole batch on rank 0 and none elsewhere — under batch
        statistics a probe's score depends on the batch it is scored in, so splitting the batch
        would change the numbers."""
        if not self.ctx.sharded:
            return torch.arange(n)
        if scorer.bn is BatchNormMode.EVAL and not self.fsdp and not scorer.whole_batch:
            return torch.arange(self.ctx.rank, n, self.ctx.world)
        return torch.arange(n) if self.ctx.is_main else torch.arange(0)

    def record(self, scorer: Scorer) -> dict[str, Any] | None:
        """The manifest's ``distributed`` entry (None in one process)."""
        if not self.ctx.sharded:
            return None
        split = scorer.bn is BatchNormMode.EVAL and not self.fsdp
        return {"world": self.ctx.world, "backend": self.ctx.backend, "fsdp": self.fsdp,
                "probes": "sharded (row i on rank i mod world)" if split else "whole batch on rank 0"}

    def gather(self, local: Any, error: str | None) -> list[Any] | None:
        """Every rank's part on rank 0 (None elsewhere); a failed rank makes every rank raise."""
        return self.ctx.gather(local, error=error)
