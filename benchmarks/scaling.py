"""How cost grows with the model and the probe count (issue 22), so a run on a big model can be
planned: audit time, sweep time per snapshot and the hook's time per measured step, for
DCGAN-32, DCGAN-64 (the pytorch/examples size) and a ~30M-parameter D (DCGAN-64 layout, ndf=212),
at two probe counts. Models are freshly initialised (cost does not depend on training); the
hook's time is the watched loop's time in the hook's callbacks per measured step (every=1),
from benchmarks/hook_profile.py. Printed beside torch.backends.cpu.get_cpu_capability().

    python benchmarks/scaling.py --quick     # a few minutes on 2 busy cores: lighter audit settings
    python benchmarks/scaling.py             # the audit's defaults (AuditConfig), probes 64 and 256
    python benchmarks/scaling.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # hook_profile, beside this script

from ganrobust.config import AuditConfig, WatchConfig  # noqa: E402
from ganrobust.measure.audit import audit_gan, audit_snapshot  # noqa: E402
from ganrobust.models import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights  # noqa: E402

MODELS = {  # name: (image size, ngf, ndf)
    "DCGAN-32": (32, 64, 64),
    "DCGAN-64": (64, 64, 64),
    "D ~30M (64x64, ndf=212)": (64, 64, 212),
}
NZ = 100


def build(size: int, ngf: int, ndf: int, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    G, D = DCGANGenerator(nz=NZ, ngf=ngf, nc=3, image_size=size), DCGANDiscriminator(ndf=ndf, nc=3, image_size=size)
    G.apply(init_dcgan_weights)
    D.apply(init_dcgan_weights)
    return G.to(device), D.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def hook_per_step(G, D, probes: int, steps: int, device: torch.device) -> float:
    """Seconds in the hook per measured step of a DCGAN loop watched with every=1 (defaults otherwise)."""
    import ganrobust
    from hook_profile import HookProfile

    profile = HookProfile()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    size = G(torch.randn(1, NZ, 1, 1, device=device)).shape[-1]
    real = torch.rand(32, 3, size, size, device=device) * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        watcher = ganrobust.watch(G, D, Path(tmp) / "run", config=WatchConfig(every=1, n_probes=probes))
        for _ in range(steps):
            opt_d.zero_grad()
            fake = G(torch.randn(32, NZ, 1, 1, device=device))
            (bce(D(real), torch.ones(32, device=device)) + bce(D(fake.detach()), torch.zeros(32, device=device))).backward()
            opt_d.step()
            opt_g.zero_grad()
            bce(D(fake), torch.ones(32, device=device)).backward()
            opt_g.step()
        watcher.close()
        sync(device)
        measured = max(1, watcher._measured)
    profile.uninstall()
    return profile.report()["hook total"] / measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--probes", type=int, nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"a subset of {list(MODELS)}")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(os.cpu_count() or 1)
    probes = args.probes or ([32, 64] if args.quick else [64, 256])
    light = dict(k_steps=2, pgd_iterations=10, efficiency_steps=3, min_norm_probes=16) if args.quick else {}
    hook_steps = 4 if args.quick else 8
    print(f"torch {torch.__version__}, torch.backends.cpu.get_cpu_capability() = "
          f"{torch.backends.cpu.get_cpu_capability()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", threads {torch.get_num_threads()}")
    print(f"audit settings: {'AuditConfig defaults' if not light else f'--quick: {light}'}; sweep = one persisted "
          f"snapshot (measure_update with min-norm, and the 8-eps linf curve); hook: every=1, watch defaults, "
          f"{hook_steps} steps; a shared host: read how times grow, not their absolute values")
    print(f"\n{'model':26s} {'D params':>9s} {'probes':>6s} {'audit s':>8s} {'sweep s/snap':>12s} {'hook s/meas.':>12s}")
    for name in args.models:
        size, ngf, ndf = MODELS[name]
        for n in probes:
            G, D = build(size, ngf, ndf, device)
            params = sum(p.numel() for p in D.parameters())
            cfg = AuditConfig(n_probes=n, **light)
            audit_s = timed(lambda: audit_gan(G, D, scorer_options={}, latent_shape=(NZ, 1, 1), cfg=cfg), device)
            G_after, _ = build(size, ngf, ndf, device)
            with torch.no_grad():
                for p, q in zip(G_after.parameters(), G.parameters()):
                    p.copy_(q + 1e-3 * torch.randn_like(q))
            Z = torch.randn((n, NZ, 1, 1), generator=torch.Generator().manual_seed(1)).to(device)
            sweep_s = timed(lambda: audit_snapshot(G, G_after, D, scorer_options={}, Z=Z, cfg=cfg), device)
            hook_s = hook_per_step(G, D, n, hook_steps, device)
            print(f"{name:26s} {params / 1e6:8.2f}M {n:6d} {audit_s:8.2f} {sweep_s:12.2f} {hook_s:12.3f}")


if __name__ == "__main__":
    main()
