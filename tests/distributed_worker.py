"""One rank of a multi-process test (tests/test_distributed.py starts 2 of them with RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, as torchrun would). Usage:

    python tests/distributed_worker.py MODE OUT_DIR

Each rank writes ``OUT_DIR/rank{r}.json`` with what it saw; the test reads them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

torch.set_num_threads(1)

from ganrobust.config import WatchConfig  # noqa: E402
from ganrobust.distributed import RankFailed, init_from_env, shutdown  # noqa: E402

STEPS = 6
# bn='eval': each probe scored alone, so the probe rows are sharded over the ranks and D's running
# statistics (rank 0's snapshot, broadcast to every rank) decide every score
CFG = WatchConfig(every=2, n_probes=12, snapshot_every=100, persist_measured=True, min_norm_every=2,
                  min_norm_probes=5, efficiency_steps=2, noise_draws=2, bounds=(-4, 4), bn="eval",
                  tau=0.16)  # about half the probes fake (scores -0.1-0.22): the minimum norms and the noise control work


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)  # the same initial weights on every rank, as DDP expects
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    # a BatchNorm D: under DDP each rank's running statistics move with its own batch in G's forward
    D = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    return G, D


def _loop(G: nn.Module, D: nn.Module, rank: int, steps: int = STEPS) -> None:
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batches, as a DistributedSampler gives
    for _ in range(steps):
        opt_d.zero_grad()
        real = torch.randn(8, 2, generator=gen) + 2
        fake = G(torch.randn(8, 4, generator=gen)).detach()
        (nn.functional.softplus(D(fake)).mean() + nn.functional.softplus(-D(real)).mean()).backward()
        opt_d.step()
        opt_g.zero_grad()
        nn.functional.softplus(-D(G(torch.randn(8, 4, generator=gen)))).mean().backward()
        opt_g.step()


def _state(*modules: nn.Module) -> list[list[float]]:
    def full(t: torch.Tensor) -> torch.Tensor:
        return t.full_tensor() if hasattr(t, "full_tensor") else t  # an FSDP2 shard: every rank gathers

    return [full(p.detach()).flatten().tolist() for m in modules for p in m.state_dict().values()]


def ddp_watch(out: Path, rank: int) -> dict[str, Any]:
    import ganrobust
    from torch.nn.parallel import DistributedDataParallel as DDP

    G, D = _pair()
    G, D = DDP(G), DDP(D)
    _loop(G, D, rank)
    plain = _state(G, D)
    rng_plain = torch.get_rng_state()
    G, D = _pair()
    G, D = DDP(G), DDP(D)
    with ganrobust.watch(G, D, out / "run", config=CFG) as watcher:
        _loop(G, D, rank)
    return {"identical": plain == _state(G, D), "rng_identical": bool(torch.equal(rng_plain, torch.get_rng_state())),
            "errors": watcher.errors, "writes": watcher.writes}


def fsdp_watch(out: Path, rank: int) -> dict[str, Any]:
    import ganrobust
    from torch.distributed.fsdp import fully_shard

    G, D = _pair()
    fully_shard(G)
    fully_shard(D)
    _loop(G, D, rank)
    plain = _state(G, D)
    G, D = _pair()
    fully_shard(G)
    fully_shard(D)
    with ganrobust.watch(G, D, out / "run", config=CFG) as watcher:
        _loop(G, D, rank)
    return {"identical": plain == _state(G, D), "errors": watcher.errors, "writes": watcher.writes}


def raising_rank(out: Path, rank: int) -> dict[str, Any]:
    from ganrobust.distributed import current

    def work(i: int, item: int) -> int:
        if rank == 1 and i == 3:
            raise ValueError("a broken snapshot")
        return item * item

    started = time.monotonic()
    try:
        current().map(list(range(6)), work)
    except RankFailed as err:
        return {"raised": str(err), "seconds": time.monotonic() - started}
    return {"raised": None, "seconds": time.monotonic() - started}


def dying_rank(out: Path, rank: int) -> dict[str, Any]:
    """Rank 1 dies outright before the gather: rank 0 must fail within the group's timeout."""
    from ganrobust.distributed import current

    if rank == 1:
        os._exit(3)
    started = time.monotonic()
    try:
        current().map(list(range(4)), lambda i, item: item)
    except Exception as err:  # RuntimeError from gloo: peer closed or timed out
        return {"raised": f"{type(err).__name__}: {err}"[:300], "seconds": time.monotonic() - started}
    return {"raised": None, "seconds": time.monotonic() - started}


def hanging_rank(out: Path, rank: int) -> dict[str, Any]:
    """Rank 1 hangs (alive, never reaching the gather): rank 0 must fail after the group's timeout."""
    from ganrobust.distributed import current

    if rank == 1:
        time.sleep(9)
        os._exit(0)
    started = time.monotonic()
    try:
        current().map(list(range(4)), lambda i, item: item)
    except Exception as err:  # RuntimeError from gloo: timed out
        return {"raised": f"{type(err).__name__}: {err}"[:300], "seconds": time.monotonic() - started}
    return {"raised": None, "seconds": time.monotonic() - started}


MODES = {"hanging_rank": hanging_rank, "ddp_watch": ddp_watch, "fsdp_watch": fsdp_watch, "raising_rank": raising_rank, "dying_rank": dying_rank}


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    ctx = init_from_env("cpu", timeout_s=float(os.environ.get("GANROBUST_DIST_TIMEOUT", 30)))
    result: dict[str, Any]
    try:
        result = MODES[mode](out, ctx.rank)
    except Exception as err:
        result = {"exception": f"{type(err).__name__}: {err}"}
        import traceback

        traceback.print_exc()
    result["backend"] = dist.get_backend() if dist.is_initialized() else None
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(result))
    if mode == "hanging_rank":
        os._exit(0)  # the group cannot be left cleanly with a peer that never answers
    if mode not in ("dying_rank", "hanging_rank"):
        shutdown()


if __name__ == "__main__":
    main()
