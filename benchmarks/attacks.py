"""Attack engine benchmark: native vs torchattacks vs foolbox on one workload, in one run.

Workload (issue 6): PGD-10 linf at 8/255 on a DCGAN discriminator for 32x32x3 inputs
(ndf=64), batch 256, CPU threads = cores. Runs alternate between backends and the median of
``--repeats`` is reported, so machine noise hits every backend alike. Prints wall time per
backend, ratios, achieved GFLOP/s against a float32 matmul peak measured in the same run,
and a robustness curve over 8 eps values against 8 separate PGD runs.

    python benchmarks/attacks.py            # full workload (~3 minutes on 2 cores)
    python benchmarks/attacks.py --quick    # smaller batch, fewer repeats
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ganrobust import Direction, Scorer  # noqa: E402
from ganrobust.attacks import PGD, FoolboxAttack, TorchattacksAttack, robustness_curve  # noqa: E402
from ganrobust.attacks.foolbox_backend import import_foolbox  # noqa: E402
from ganrobust.attacks.two_logit import TwoLogit  # noqa: E402
from ganrobust.models import DCGANDiscriminator, init_dcgan_weights  # noqa: E402


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul on this machine, now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_flops(scorer: Scorer, x: torch.Tensor) -> tuple[int, int]:
    """FLOPs of one forward, and of one forward + input-gradient backward, on the attacked copy."""
    work, xw = scorer.for_attack(x)
    with work.session():
        with FlopCounterMode(display=False) as fwd:
            with torch.no_grad():
                work.forward(xw)
        with FlopCounterMode(display=False) as both:
            xi = xw.detach().requires_grad_(True)
            work.forward(xi).sum().backward()  # parameters are frozen: only the input's grad
    return fwd.get_total_flops(), both.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 64, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = 64, 2
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)

    d = DCGANDiscriminator(ndf=args.ndf, nc=3, image_size=32)
    d.apply(init_dcgan_weights)
    d.train()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for _ in range(4):
            d(torch.rand(64, 3, 32, 32) * 2 - 1)
    d.eval()
    x = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    scorer = Scorer(d)
    scorer = scorer.with_tau(scorer.score(x).median().item())  # half the batch is "fake"
    eps, steps = 8 / 255, args.steps
    options = {"steps": steps, "rel_stepsize": 0.25, "random_start": True}

    fb = import_foolbox()
    import torchattacks as ta

    u = (x + 1) / 2
    labels = torch.zeros(args.batch, dtype=torch.long)

    def raw_torchattacks() -> None:  # what a torchattacks user would run on the module as given
        with scorer.session():
            ta.PGD(TwoLogit(scorer, Direction.FAKE_TO_REAL, unit_space=True), eps=eps,
                   alpha=0.25 * eps, steps=steps, random_start=True)(u, labels)

    def raw_foolbox() -> None:
        with scorer.session():
            model = fb.PyTorchModel(TwoLogit(scorer, Direction.FAKE_TO_REAL, unit_space=False), bounds=(-1, 1))
            fb.attacks.LinfPGD(rel_stepsize=0.25, steps=steps, random_start=True)(model, x, labels, epsilons=2 * eps)

    runs: dict[str, Callable[[], object]] = {
        "native PGD (full length)": lambda: PGD(norm="linf", early_stop=False, **options)(scorer, x, eps=eps),
        "native PGD (early stop)": lambda: PGD(norm="linf", early_stop=True, **options)(scorer, x, eps=eps),
        "torchattacks PGD (raw)": raw_torchattacks,
        "torchattacks PGD (via ganrobust)": lambda: TorchattacksAttack("PGD", norm="linf", **options)(scorer, x, eps=eps),
        "foolbox LinfPGD (raw)": raw_foolbox,
        "foolbox LinfPGD (via ganrobust)": lambda: FoolboxAttack("PGD", norm="linf", **options)(scorer, x, eps=eps),
    }
    grid = [k / 255 for k in range(1, 9)]
    runs["robustness curve, 8 eps"] = lambda: robustness_curve(scorer, x, grid, norm="linf")
    runs["8 separate PGD runs"] = lambda: [PGD(norm="linf", **options)(scorer, x, eps=e) for e in grid]

    fwd_flops, step = step_flops(scorer, x)
    for fn in runs.values():  # warm-up: oneDNN primitive caches, lazy imports
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks = []
    for _ in range(args.repeats):
        peaks.append(matmul_peak(repeats=3))  # the peak drifts with the machine: measure it between runs
        for name, fn in runs.items():  # alternate, so drift hits every backend alike
            times[name].append(_timed(fn))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    peak = statistics.median(peaks)

    native = med["native PGD (full length)"]
    work = steps * step + 2 * fwd_flops  # gradient steps + clean and final evaluation
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, ndf {args.ndf}, PGD-{steps} linf eps 8/255, "
          f"repeats {args.repeats} (median)")
    print(f"float32 matmul peak: median {peak:.1f} GFLOP/s (range {min(peaks):.1f}-{max(peaks):.1f} across repeats)")
    print(f"one forward: {fwd_flops / 1e9:.2f} GFLOP; forward + input-gradient backward: {step / 1e9:.2f} GFLOP\n")
    print(f"{'run':36s} {'median s':>9s} {'min s':>7s} {'vs native':>10s}")
    for name in runs:
        print(f"{name:36s} {med[name]:9.3f} {min(times[name]):7.3f} {med[name] / native:9.2f}x")
    print(f"\nnative PGD achieved {work / native / 1e9:.1f} GFLOP/s = {work / native / 1e9 / peak:.0%} of the median "
          f"matmul peak (target >= 70%)")
    print(f"speed-up over torchattacks (raw): {med['torchattacks PGD (raw)'] / native:.2f}x (target >= 1.5x)")
    print(f"speed-up over foolbox (raw):      {med['foolbox LinfPGD (raw)'] / native:.2f}x (target >= 2x)")
    curve_t = med["robustness curve, 8 eps"]
    print(f"8-eps curve: {curve_t / native:.2f}x one full-length PGD run (target <= 2x), "
          f"{med['8 separate PGD runs'] / curve_t:.2f}x faster than 8 separate PGD runs")

    curve = robustness_curve(scorer, x, grid, norm="linf")
    per_eps = [PGD(norm="linf", **options)(scorer, x, eps=e).success_rate.value for e in grid]
    print("\neps*255  curve   per-eps PGD-10  difference (points)")
    for e, c, p in zip(grid, curve.success, per_eps):
        print(f"{e * 255:6.0f}  {c.value:6.3f}  {p:13.3f}  {100 * (c.value - p):+8.1f}")
    worst = max(abs(c.value - p) for c, p in zip(curve.success, per_eps))
    print(f"largest disagreement: {100 * worst:.1f} points (target <= 2)")


if __name__ == "__main__":
    main()
