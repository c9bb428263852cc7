"""A pytorch/examples-style DCGAN loop (examples/dcgan/main.py, at 32x32 on synthetic data), run
as its own process by ``benchmarks/watch.py --whole-process`` and ``benchmarks/gpu_check.sh``.

Plain, it imports torch and nothing else of this project; ``--watch`` adds the one line
(``ganrobust.watch(netG, netD, run_dir, every=...)``) and its import. The loop is the examples'
own: D in train mode for both its real and fake batches and during G's step, BCE on logits,
Adam(2e-4, 0.5), fixed seed. It prints one JSON line: wall time, the SHA-256 of the final G and
D state and of the RNG, peak GPU memory on cuda, and with ``--profile`` the hook's time by part.

    python benchmarks/dcgan_loop.py --steps 300 --threads 1            # plain
    python benchmarks/dcgan_loop.py --steps 300 --threads 1 --watch    # the one added line
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time

START = time.perf_counter()

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Generator(nn.Module):  # examples/dcgan/main.py's netG, 32x32 (three transposed convolutions)
    def __init__(self, nz: int, ngf: int, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):  # netD without the trailing Sigmoid (BCEWithLogitsLoss instead)
    def __init__(self, ndf: int, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def synthetic_images(n: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth random images in [-1, 1]: 4x4 noise upsampled to 32x32 (no dataset download)."""
    low = torch.rand(n, 3, 4, 4, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False).clamp(-1, 1)


def digest(*modules: nn.Module) -> str:
    h = hashlib.sha256()
    for m in modules:
        for k, v in m.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(torch.get_rng_state().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--nz", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--watch", action="store_true", help="add the one line: ganrobust.watch(netG, netD, ...)")
    parser.add_argument("--every", type=int, default=None, help="watch option every= (default: the hook's)")
    parser.add_argument("--precision", default=None, help="watch option precision= (default: the hook's)")
    parser.add_argument("--overlap", choices=["auto", "on", "off"], default=None,
                        help="watch option overlap= (default: the hook's, auto; off: the synchronous hook)")
    parser.add_argument("--profile", action="store_true", help="time the hook by part (adds overhead)")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic kernels (cuDNN), so that two plain runs on a GPU are bit-identical too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.deterministic:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = synthetic_images(4096, torch.Generator().manual_seed(1)).to(device)
    netG, netD = Generator(args.nz, args.ngf).to(device), Discriminator(args.ndf).to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    profile = None
    import_s = 0.0
    watcher = None
    tmp = tempfile.TemporaryDirectory()
    if args.watch:
        started = time.perf_counter()
        import ganrobust
        import_s = time.perf_counter() - started
        if args.profile:
            from hook_profile import HookProfile  # benchmarks/hook_profile.py, beside this script
            profile = HookProfile()
        options = {k: v for k, v in {"every": args.every, "precision": args.precision,
                                     "overlap": {"auto": "auto", "on": True, "off": False}.get(args.overlap)}.items() if v is not None}
        watcher = ganrobust.watch(netG, netD, args.run_dir or tmp.name + "/run", **options)  # the one line

    loop_start = time.perf_counter()
    n = data.shape[0]
    for step in range(args.steps):
        real = data[torch.randint(0, n, (args.batch,), device=device)]
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        err_real = criterion(netD(real), torch.ones(args.batch, device=device))
        err_real.backward()
        noise = torch.randn(args.batch, args.nz, 1, 1, device=device)
        fake = netG(noise)
        err_fake = criterion(netD(fake.detach()), torch.zeros(args.batch, device=device))
        err_fake.backward()
        optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        errG = criterion(netD(fake), torch.ones(args.batch, device=device))
        errG.backward()
        optimizerG.step()
    if watcher is not None:
        watcher.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    end = time.perf_counter()
    out = {"watch": args.watch, "steps": args.steps, "threads": torch.get_num_threads(), "device": str(device),
           "process_s": end - START, "loop_s": end - loop_start, "import_ganrobust_s": import_s,
           "state_sha256": digest(netG, netD),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    if device.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    if watcher is not None:
        out["measured_steps"] = watcher._measured
    if profile is not None:
        out["profile"] = profile.report()
    print(json.dumps(out))
    tmp.cleanup()


if __name__ == "__main__":
    main()
