"""Hook overhead benchmark: the DCGAN-32 reference trainer without the hook, with snapshots
only, and with the default measurement, runs alternating in one process.

Prints time ratios against plain training, resident-memory growth over the run (it should
be bounded by the ring buffer plus a constant, whatever the number of steps), and the
snapshot copy against a plain copy of the same number of bytes.

Issue 14: the default measurement with a float32 and with a bf16 search side by side, printed
beside the host's CPU capability and bf16 flags.

    python benchmarks/watch.py            # 60 steps x 5 repeats (~5 minutes on 2 cores)
    python benchmarks/watch.py --quick

Issue 22, the whole process: ``--whole-process`` runs benchmarks/dcgan_loop.py (the
pytorch/examples DCGAN loop, 1 thread) in a fresh interpreter without and with the one added
line, alternating which goes first, and prints the median wall-time ratio over the pairs, that
training ended bit-identical (SHA-256 of G, D and the RNG), and one profiled watched run's
breakdown per part (import, then per measured step: snapshot, probes, scoring, min-norm,
efficiency PGD, noise control, persistence, writing).

    python benchmarks/watch.py --whole-process                    # 300 steps, every=25, 5 pairs
    python benchmarks/watch.py --whole-process --every 25 1 --pairs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganrobust.config import WatchConfig
from ganrobust.snapshots import SnapshotRing, StateView
from ganrobust.config import TrainConfig
from ganrobust.train import build_models, train
from ganrobust.data import shapes

PAGE = os.sysconf("SC_PAGE_SIZE")


def host_line() -> str:
    from ganrobust.attacks.precision import host_facts

    facts = host_facts("cpu")
    return (f"host: torch.backends.cpu.get_cpu_capability() = {facts.cpu_capability}, bf16/fp16 flags: "
            f"{' '.join(sorted(facts.cpu_flags)) or 'none'}; precision auto: timed per model (attacks/precision.py)")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--whole-process", action="store_true", help="fresh interpreters, with and without the line")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--every", type=int, nargs="+", default=[25])
    parser.add_argument("--loop-steps", type=int, default=300)
    args = parser.parse_args()
    if args.whole_process:
        whole_process(args.loop_steps, args.every, args.pairs)
        return
    if args.quick:
        args.steps, args.repeats = 30, 2
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = TrainConfig(steps=args.steps)
    data = shapes(cfg.n_data, seed=0)
    default = WatchConfig()
    configs = {
        "plain": None,
        "snapshots only": default.replace(every=10**9, snapshot_every=10**9),
        "default measurement": default.replace(precision="fp32"),
        "default measurement bf16": default.replace(precision="bf16"),
    }
    times: dict[str, list[float]] = {k: [] for k in configs}
    memory: dict[str, list[tuple[int, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train(TrainConfig(steps=3), data=data)  # warm-up
        for r in range(args.repeats):
            for name, wcfg in configs.items():
                samples: list[tuple[int, int]] = []
                start = time.perf_counter()
                train(cfg, data=data, run_dir=None if wcfg is None else Path(tmp) / f"{name}-{r}".replace(" ", "_"),
                      watch_config=wcfg, on_step=lambda step, _: samples.append((step, rss())))
                times[name].append(time.perf_counter() - start)
                memory[name] = samples
    plain = statistics.median(times["plain"])
    print(f"DCGAN-32 trainer (ngf={cfg.ngf}, ndf={cfg.ndf}, batch {cfg.batch}), {args.steps} generator steps, "
          f"{args.repeats} alternating repeats, threads {torch.get_num_threads()}")
    print(f"default measurement: every={default.every}, n_probes={default.n_probes}, "
          f"efficiency_steps={default.efficiency_steps}, min_norm_every={default.min_norm_every}\n")
    print(f"{'configuration':22s} {'median s':>9s} {'s/step':>8s} {'vs plain':>9s}  target")
    print(host_line())
    targets = {"plain": "", "snapshots only": "<= 1.02x", "default measurement": "<= 1.10x",
               "default measurement bf16": "<= 1.05x"}
    for name in configs:
        med = statistics.median(times[name])
        print(f"{name:22s} {med:9.2f} {med / args.steps:8.3f} {med / plain:8.3f}x  {targets[name]}")

    G, D = build_models(cfg, data)
    view = StateView(D)
    ring = SnapshotRing(view, default.ring_size)
    print(f"\nD state: {view.nbytes / 2**20:.2f} MiB; ring of {default.ring_size}: {ring.nbytes / 2**20:.2f} MiB")
    for name, samples in memory.items():
        half = len(samples) // 2
        growth = samples[-1][1] - samples[half][1]
        print(f"resident memory growth over steps {samples[half][0]}..{samples[-1][0]} ({name}): {growth / 2**20:+.2f} MiB")

    flat_src = torch.empty(view.nbytes // 4)
    flat_dst = torch.empty_like(flat_src)
    n = 200
    for _ in range(10):
        ring.take(0)
        flat_dst.copy_(flat_src)
    snap = min(_time(lambda: ring.take(1), n) for _ in range(5))
    plain_copy = min(_time(lambda: flat_dst.copy_(flat_src), n) for _ in range(5))
    print(f"\nsnapshot copy {snap * 1e6:.0f} us vs plain copy of the same bytes {plain_copy * 1e6:.0f} us: "
          f"{snap / plain_copy:.2f}x (target <= 1.5x)")
    from ganrobust.models import DCGANDiscriminator

    big = StateView(DCGANDiscriminator(ndf=64, image_size=64))  # the pytorch/examples size, for context
    big_ring = SnapshotRing(big, 2)
    big_src, big_dst = torch.empty(big.nbytes // 4), torch.empty(big.nbytes // 4)
    snap = min(_time(lambda: big_ring.take(1), 50) for _ in range(5))
    plain_copy = min(_time(lambda: big_dst.copy_(big_src), 50) for _ in range(5))
    print(f"DCGAN-64 D ({big.nbytes / 2**20:.1f} MiB): snapshot {snap * 1e6:.0f} us vs plain {plain_copy * 1e6:.0f} us: "
          f"{snap / plain_copy:.2f}x")


LOOP = Path(__file__).with_name("dcgan_loop.py")
PARTS = ("snapshot", "probes", "scoring", "min-norm", "efficiency PGD", "noise control", "persistence", "writing")


def run_loop(steps: int, *extra: str) -> tuple[float, dict]:
    """One fresh interpreter running the loop: its wall time from outside and its JSON line."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, str(LOOP), "--steps", str(steps), "--threads", "1", *extra],
                         capture_output=True, text=True, check=True, cwd=LOOP.parent)
    return time.perf_counter() - started, json.loads(out.stdout.strip().splitlines()[-1])


def whole_process(steps: int, everies: list[int], pairs: int) -> None:
    print(host_line())
    print(f"pytorch/examples DCGAN loop (benchmarks/dcgan_loop.py, 32x32, batch 64, ngf=ndf=32), {steps} steps, "
          f"1 thread, fresh interpreter per run, {pairs} rounds of plain / watched (defaults: overlap='auto', the "
          f"measurement thread on an idle core) / watched overlap=False (synchronous) in rotating order; read "
          f"the ratios within a round, not the seconds")
    for every in everies:
        variants = {"plain": [], "watched": ["--watch", "--every", str(every)],
                    "watched sync": ["--watch", "--every", str(every), "--overlap", "off"]}
        seconds: dict[str, list[float]] = {k: [] for k in variants}
        ratios: dict[str, list[float]] = {k: [] for k in variants if k != "plain"}
        identical = True
        for i in range(pairs):
            names = list(variants)[i % 3:] + list(variants)[:i % 3]
            got = {name: run_loop(steps, *variants[name]) for name in names}
            for name in variants:
                seconds[name].append(got[name][0])
            for name in ratios:
                ratios[name].append(got[name][0] / got["plain"][0])
            identical &= len({got[name][1]["state_sha256"] for name in variants}) == 1
            print(f"  round {i + 1} ({' / '.join(names)}): " + ", ".join(
                f"{name} {got[name][0]:.2f} s" for name in variants) + ", ratios " + ", ".join(
                f"{name} {ratios[name][-1]:.3f}x" for name in ratios) + f", bit-identical {identical}", flush=True)
        med_plain = statistics.median(seconds["plain"])
        print(f"\nevery={every}: plain {med_plain:.2f} s median; training bit-identical in every run: {identical}")
        for name, r in ratios.items():
            print(f"  {name:16s} {statistics.median(seconds[name]):7.2f} s, vs plain median {statistics.median(r):.3f}x "
                  f"(rounds: {', '.join(f'{x:.3f}' for x in r)})  [cpu capability "
                  f"{torch.backends.cpu.get_cpu_capability()}]")
        _, prof = run_loop(steps, "--watch", "--every", str(every), "--overlap", "off", "--profile")
        measured = max(1, prof["measured_steps"])
        per = prof["profile"]
        print(f"  profiled watched run (synchronous): import ganrobust {prof['import_ganrobust_s'] * 1e3:.0f} ms, "
              f"hook total {per['hook total']:.2f} s over {prof['measured_steps']} measured steps "
              f"({per['min-norm calls']} with min-norm); per measured step (ms):")
        print("  " + ", ".join(f"{k} {per.get(k, 0.0) / measured * 1e3:.1f}" for k in PARTS)
              + f"; whole-process plain time per training step {med_plain / steps * 1e3:.1f} ms")


def _time(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


if __name__ == "__main__":
    main()
