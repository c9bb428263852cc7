"""Sharded snapshot audit: 1 process x 1 thread against 2 processes x 1 thread (gloo, CPU).

Trains a small DCGAN run with persisted snapshots, then audits every snapshot
(``audit --snapshots all``'s sweep, ``ganrobust.run_audit.audit_sharded``) in a group of 1 and in
a group of 2 processes started as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT), 1 thread
each, alternating, ``--repeats`` times. Each process times the sweep between two barriers (the
interpreter's start and torch's import are not part of the sharded work; they are printed
separately as the end-to-end time). Prints the speedup (the ratio of the medians) and the bytes
each snapshot's record adds to the gather, next to the host's CPU capability, and checks that
both groups produce the same records.

    python benchmarks/distributed.py            # 8 snapshots x 3 repeats
    python benchmarks/distributed.py --quick    # 4 snapshots x 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def capability() -> str:
    return f"[cpu capability {torch.backends.cpu.get_cpu_capability()}]"


def worker(run_dir: Path, out: Path, n_probes: int) -> None:
    """One rank: audit every persisted snapshot of ``run_dir``, sharded; rank 0 writes the timings."""
    torch.set_num_threads(1)
    from ganrobust.config import AuditConfig
    from ganrobust.distributed import init_from_env, payload_bytes, shutdown
    from ganrobust.pipeline.sweep import audit_sharded
    from ganrobust.runs.checkpoints import load_gan
    from ganrobust.runs.settings import configured, resolve_settings, score_spec_for

    ctx = init_from_env("cpu")
    loaded = load_gan(run_dir)
    settings = resolve_settings(loaded)
    cfg = configured(AuditConfig(n_probes=n_probes), settings, loaded.train_config)
    ctx.barrier()
    started, cpu = time.perf_counter(), time.process_time()
    done = [started, cpu]

    def tick(_step: int) -> None:  # when this rank finished its latest item (before the gather's wait)
        done[:] = [time.perf_counter(), time.process_time()]

    _, records = audit_sharded(None, run_dir, loaded, out, selection="all", cfg=cfg,
                               scorer_options=score_spec_for(loaded, settings), tick=tick, ctx=ctx)
    own = (done[0] - started, done[1] - cpu)  # this rank's own items: wall, CPU seconds
    per_rank = ctx.gather(own)
    ctx.barrier()
    seconds = time.perf_counter() - started
    if ctx.is_main:
        assert records is not None
        (out / "timing.json").write_text(json.dumps({
            "seconds": seconds, "world": ctx.world, "per_rank": per_rank, "snapshots": len(records),
            "bytes_per_snapshot": [payload_bytes({i: r}) for i, r in enumerate(records)],
            "records": records}))
    shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(world: int, run_dir: Path, out: Path, n_probes: int) -> dict:
    """``world`` processes of this script in worker mode, 1 thread each; returns rank 0's timing."""
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GIT_PYTHON_REFRESH="quiet")
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(run_dir), str(out), str(n_probes)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
             for r in range(world)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a rank failed: exit codes {codes}")
    timing = json.loads((out / "timing.json").read_text())
    timing["end_to_end"] = time.perf_counter() - started
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-probes", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("RUN_DIR", "OUT", "N_PROBES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), int(args.worker[2]))
        return
    if args.quick:
        args.snapshots, args.repeats = 4, 1
    from ganrobust.config import TrainConfig, WatchConfig
    from ganrobust.train import train

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        every = 5
        train(TrainConfig(steps=every * args.snapshots, batch=32, nz=32, ngf=16, ndf=16, n_data=512), run_dir=run_dir,
              watch_config=WatchConfig(every=every, n_probes=args.n_probes, snapshot_every=every))
        print(f"run: DCGAN-32 (ngf=ndf=16), {args.snapshots} persisted snapshots, {args.n_probes} probes each; "
              f"host {os.cpu_count()} cores {capability()}")
        times: dict[int, list[float]] = {1: [], 2: []}
        ends: dict[int, list[float]] = {1: [], 2: []}
        results: dict[int, dict] = {}
        results_cpu: dict[int, list[float]] = {1: [], 2: []}
        for repeat in range(args.repeats):
            for world in (1, 2):
                out = Path(tmp) / f"audit-{world}-{repeat}"  # a fresh folder: nothing to resume
                results[world] = launch(world, run_dir, out, args.n_probes)
                times[world].append(results[world]["seconds"])
                results_cpu[world].append(max(c for _, c in results[world]["per_rank"]))
                ends[world].append(results[world]["end_to_end"])
                ranks = ", ".join(f"rank {r} {w:.2f} s wall / {c:.2f} s CPU"
                                  for r, (w, c) in enumerate(results[world]["per_rank"]))
                print(f"  repeat {repeat + 1}: {world} process(es) x 1 thread: sweep {times[world][-1]:.2f} s, "
                      f"end to end {ends[world][-1]:.2f} s ({ranks}) {capability()}")
        same = results[1]["records"] == results[2]["records"]
        one, two = statistics.median(times[1]), statistics.median(times[2])
        e1, e2 = statistics.median(ends[1]), statistics.median(ends[2])
        sizes = results[2]["bytes_per_snapshot"]
        print(f"speedup of the sharded sweep, 2x1 over 1x1: {one / two:.2f}x (target >= 1.7x) {capability()}")
        cpu1 = statistics.median(results_cpu[1])
        cpu2 = statistics.median(results_cpu[2])
        print(f"work split (CPU seconds of 1x1 over the busiest rank's of 2x1, what the wall-clock speedup is when "
              f"each process has a free core): {cpu1 / cpu2:.2f}x {capability()}")
        print(f"speedup end to end (process start and imports included): {e1 / e2:.2f}x {capability()}")
        print(f"bytes gathered per snapshot (pickled record): median {statistics.median(sizes):.0f} B, "
              f"max {max(sizes)} B {capability()}")
        print(f"records identical in both groups: {same}")
        load = os.getloadavg()
        print(f"load average during the run (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
              f"on {os.cpu_count()} cores: other work on the host lowers the 2-process figure")
        if not same:
            raise SystemExit("the sharded records differ from the single-process ones")


if __name__ == "__main__":
    main()
