"""Attack engine benchmark: native vs torchattacks vs foolbox on one workload, in one run.

Workload (issue 6): PGD-10 linf at 8/255 on a DCGAN discriminator for 32x32x3 inputs
(ndf=64), batch 256, CPU threads = cores. Runs alternate between backends and the median of
``--repeats`` is reported, so machine noise hits every backend alike. Prints wall time per
backend, ratios, achieved GFLOP/s against a float32 matmul peak measured in the same run,
and a robustness curve over 8 eps values against 8 separate PGD runs.

Issue 14 (precision): the same native attacks with a bf16 search (float32 verdict) side by side,
their ratios to raw torchattacks/foolbox, and the agreement with a float32 search — PGD-10
success and median eps* (minimum-norm attack and curve) — on the workload and on the D of the
committed sample report (``ganrobust demo``: 600 steps of the shapes DCGAN, seed 0, retrained
here; ``--sample-steps 0`` skips it). Every figure is printed beside the host's CPU capability
and bf16 flags: on a host without native bf16 the bf16 rows are emulated and slow.

    python benchmarks/attacks.py            # full workload (~6 minutes on 2 cores)
    python benchmarks/attacks.py --quick    # smaller batch, fewer repeats
    python benchmarks/attacks.py --quick --device cuda   # the same on a GPU, fp16 rows added

``--device`` runs every row on that device through the same code (benchmarks/gpu_check.sh
passes ``cuda``); on CPU it is the default.
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
from ganrobust.attacks import PGD, FoolboxAttack, MinNorm, TorchattacksAttack, robustness_curve  # noqa: E402
from ganrobust.attacks.precision import host_facts  # noqa: E402
from ganrobust.attacks.foolbox_backend import import_foolbox  # noqa: E402
from ganrobust.attacks.two_logit import TwoLogit  # noqa: E402
from ganrobust.models import DCGANDiscriminator, init_dcgan_weights  # noqa: E402


def host_line() -> str:
    """The facts every figure is read against: capability, bf16/fp16 flags, what auto picks."""
    facts = host_facts(DEVICE)
    gpu = f"; device {torch.cuda.get_device_name(DEVICE)}" if DEVICE.type == "cuda" else ""
    return (f"host: torch.backends.cpu.get_cpu_capability() = {facts.cpu_capability}, bf16/fp16 flags: "
            f"{' '.join(sorted(facts.cpu_flags)) or 'none'}{gpu}; precision auto: timed per model (attacks/precision.py)")


def agreement(scorer: Scorer, x: torch.Tensor, options: dict, label: str, seeds: int = 3, low: str = "bf16") -> None:
    """PGD-10 linf success and median eps* with a reduced-precision (``low``) search against float32."""
    print(f"\nagreement on {label} ({x.shape[0]} samples, {low} search vs fp32 search, verdicts in float32) "
          f"[{host_line()}]")
    for eps in (2 / 255, 4 / 255, 8 / 255):
        diffs = []
        for seed in range(seeds):
            r32 = PGD(norm="linf", precision="fp32", **options)(scorer, x, eps=eps, seed=seed).success_rate.value
            r16 = PGD(norm="linf", precision=low, **options)(scorer, x, eps=eps, seed=seed).success_rate.value
            diffs.append(100 * (r16 - r32))
        print(f"  PGD-10 linf eps {eps * 255:.0f}/255: success fp32 {r32:.3f}, {low} {r16:.3f} (last seed); "
              f"{low} - fp32 over {seeds} seeds: {', '.join(f'{d:+.1f}' for d in diffs)} points (target within 1)")
    n = min(64, x.shape[0])
    m32 = MinNorm(norm="linf", bisection_steps=6, precision="fp32")(scorer, x[:n])
    m16 = MinNorm(norm="linf", bisection_steps=6, precision=low)(scorer, x[:n])
    med32 = float(m32.norms_fraction[m32.attacked].median())
    med16 = float(m16.norms_fraction[m16.attacked].median())
    print(f"  minimum-norm linf (DeepFool + 6 bisections) on {n}: median eps* fp32 {med32 * 255:.4f}/255, "
          f"bf16 {med16 * 255:.4f}/255: {100 * (med16 / med32 - 1):+.2f}% (target within 2%)")
    grid = [k / 255 for k in range(1, 9)]
    c32 = robustness_curve(scorer, x, grid, norm="linf", precision="fp32")
    c16 = robustness_curve(scorer, x, grid, norm="linf", precision=low)
    e32, e16 = c32.median_eps_star.value, c16.median_eps_star.value
    worst = max(abs(a.value - b.value) for a, b in zip(c32.success, c16.success))
    print(f"  robustness curve linf, 8 eps: median eps* fp32 {e32 * 255:.4f}/255, bf16 {e16 * 255:.4f}/255: "
          f"{100 * (e16 / e32 - 1):+.2f}% (target within 2%); largest success difference {100 * worst:.1f} points")


def sample_d(steps: int, device: str = "cpu") -> tuple[Scorer, torch.Tensor]:
    """The D and generated samples of the committed sample report (ganrobust demo, seed 0),
    scored as the demo scores it (batch statistics)."""
    from ganrobust.measure.replay import generate
    from ganrobust.conventions import BatchNormMode
    from ganrobust.config import TrainConfig
    from ganrobust.train import train

    cfg = TrainConfig(steps=steps, seed=0, device=device)
    result = train(cfg)
    z = torch.randn((256, cfg.nz, 1, 1), generator=torch.Generator().manual_seed(0)).to(device)
    x = generate(result.G, z, BatchNormMode.BATCH).detach()
    return Scorer(result.D, bn="batch"), x


DEVICE = torch.device("cpu")


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul on this machine, now."""
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
    start = time.perf_counter()
    fn()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
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
    parser.add_argument("--sample-steps", type=int, default=600,
                        help="train the sample report's D for the agreement check (0 skips it)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (benchmarks/gpu_check.sh)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
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
    d.eval().to(DEVICE)
    x = (torch.rand(args.batch, 3, 32, 32) * 2 - 1).to(DEVICE)
    scorer = Scorer(d)
    scorer = scorer.with_tau(scorer.score(x).median().item())  # half the batch is "fake"
    eps, steps = 8 / 255, args.steps
    options = {"steps": steps, "rel_stepsize": 0.25, "random_start": True}

    fb = import_foolbox()
    import torchattacks as ta

    u = (x + 1) / 2
    labels = torch.zeros(args.batch, dtype=torch.long, device=DEVICE)

    def raw_torchattacks() -> None:  # what a torchattacks user would run on the module as given
        with scorer.session():
            ta.PGD(TwoLogit(scorer, Direction.FAKE_TO_REAL, unit_space=True), eps=eps,
                   alpha=0.25 * eps, steps=steps, random_start=True)(u, labels)

    def raw_foolbox() -> None:
        with scorer.session():
            model = fb.PyTorchModel(TwoLogit(scorer, Direction.FAKE_TO_REAL, unit_space=False), bounds=(-1, 1))
            fb.attacks.LinfPGD(rel_stepsize=0.25, steps=steps, random_start=True)(model, x, labels, epsilons=2 * eps)

    fp32, bf16 = {**options, "precision": "fp32"}, {**options, "precision": "bf16"}
    runs: dict[str, Callable[[], object]] = {
        "native PGD (full length)": lambda: PGD(norm="linf", early_stop=False, **fp32)(scorer, x, eps=eps),
        "native PGD (early stop)": lambda: PGD(norm="linf", early_stop=True, **fp32)(scorer, x, eps=eps),
        "native PGD bf16 (full length)": lambda: PGD(norm="linf", early_stop=False, **bf16)(scorer, x, eps=eps),
        "native PGD bf16 (early stop)": lambda: PGD(norm="linf", early_stop=True, **bf16)(scorer, x, eps=eps),
        "torchattacks PGD (raw)": raw_torchattacks,
        "torchattacks PGD (via ganrobust)": lambda: TorchattacksAttack("PGD", norm="linf", **options)(scorer, x, eps=eps),
        "foolbox LinfPGD (raw)": raw_foolbox,
        "foolbox LinfPGD (via ganrobust)": lambda: FoolboxAttack("PGD", norm="linf", **options)(scorer, x, eps=eps),
    }
    grid = [k / 255 for k in range(1, 9)]
    runs["robustness curve, 8 eps"] = lambda: robustness_curve(scorer, x, grid, norm="linf", precision="fp32")
    runs["robustness curve, 8 eps, bf16"] = lambda: robustness_curve(scorer, x, grid, norm="linf", precision="bf16")
    runs["8 separate PGD runs"] = lambda: [PGD(norm="linf", **fp32)(scorer, x, eps=e) for e in grid]
    runs["min-norm linf (64)"] = lambda: MinNorm(norm="linf", bisection_steps=6, precision="fp32")(scorer, x[:64])
    runs["min-norm linf (64), bf16"] = lambda: MinNorm(norm="linf", bisection_steps=6, precision="bf16")(scorer, x[:64])
    if DEVICE.type == "cuda":  # fp16 is a CUDA precision (tensor cores); on CPU it is emulated
        fp16 = {**options, "precision": "fp16"}
        runs["native PGD fp16 (full length)"] = lambda: PGD(norm="linf", early_stop=False, **fp16)(scorer, x, eps=eps)

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
    print(host_line())
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

    low = med["native PGD bf16 (full length)"]
    print(f"\nbf16 search [{host_line()}]:")
    print(f"bf16 PGD (full length) vs fp32 native:   {native / low:.2f}x faster")
    print(f"bf16 PGD vs torchattacks (raw):           {med['torchattacks PGD (raw)'] / low:.2f}x (target >= 1.8x)")
    print(f"bf16 PGD vs foolbox (raw):                {med['foolbox LinfPGD (raw)'] / low:.2f}x (target >= 2.5x)")
    print(f"bf16 PGD (early stop) vs torchattacks / foolbox (raw): "
          f"{med['torchattacks PGD (raw)'] / med['native PGD bf16 (early stop)']:.2f}x / "
          f"{med['foolbox LinfPGD (raw)'] / med['native PGD bf16 (early stop)']:.2f}x")
    print(f"8-eps curve bf16 vs fp32: {curve_t / med['robustness curve, 8 eps, bf16']:.2f}x faster; "
          f"min-norm bf16 vs fp32: {med['min-norm linf (64)'] / med['min-norm linf (64), bf16']:.2f}x faster")

    if DEVICE.type == "cuda":
        half = med["native PGD fp16 (full length)"]
        print(f"fp16 PGD (full length) vs fp32 native: {native / half:.2f}x; vs torchattacks / foolbox (raw): "
              f"{med['torchattacks PGD (raw)'] / half:.2f}x / {med['foolbox LinfPGD (raw)'] / half:.2f}x")

    curve = robustness_curve(scorer, x, grid, norm="linf", precision="fp32")
    per_eps = [PGD(norm="linf", **fp32)(scorer, x, eps=e).success_rate.value for e in grid]
    print("\neps*255  curve   per-eps PGD-10  difference (points)")
    for e, c, p in zip(grid, curve.success, per_eps):
        print(f"{e * 255:6.0f}  {c.value:6.3f}  {p:13.3f}  {100 * (c.value - p):+8.1f}")
    worst = max(abs(c.value - p) for c, p in zip(curve.success, per_eps))
    print(f"largest disagreement: {100 * worst:.1f} points (target <= 2)")

    lows = ("bf16", "fp16") if DEVICE.type == "cuda" else ("bf16",)
    for low in lows:
        agreement(scorer, x, options, f"the benchmark workload (random DCGAN-32 D, ndf {args.ndf})", low=low)
    if args.sample_steps:
        sample_scorer, xs = sample_d(args.sample_steps, args.device)
        for low in lows:
            agreement(sample_scorer, xs, options, f"the sample report's D (demo: {args.sample_steps} steps, seed 0, "
                      f"bn=batch, G samples fake->real)", low=low)


if __name__ == "__main__":
    main()
