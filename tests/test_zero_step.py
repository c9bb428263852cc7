"""A zero step is a zero update: with G's parameters unchanged (an optimizer with learning rate 0),
x' = G'(z) equals x = G(z) exactly and nothing flips — for Gs that redraw noise on every call
(StyleGAN's per-layer noise) and Gs whose BatchNorm statistics or spectral-norm vectors move in
a training-mode forward, in the audit's replay and in the watch hook. Stand-ins written here."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

import ganrobust
from ganrobust.config import AuditConfig, WatchConfig
from ganrobust.conventions import BatchNormMode
from ganrobust.gan_call import GanCall, StyleGANCall
from ganrobust.measure.replay import generate, replay_steps
from ganrobust.measure.update import measure_update
from ganrobust.models import ConditionalDCGANGenerator, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from ganrobust.runs import read_run
from ganrobust.scorer import Scorer


class NoisyG(nn.Module):
    """Adds fresh Gaussian noise to its features on every call (BigGAN/StyleGAN-style noise inputs)."""

    def __init__(self, nz: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(nz, 3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z.flatten(1))
        return torch.tanh(h + 0.3 * torch.randn_like(h)).view(-1, 3, 8, 8)


class BatchNormG(nn.Module):
    """BatchNorm in G, whose running statistics move in every training-mode forward."""

    def __init__(self, nz: int = 8) -> None:
        super().__init__()
        self.fc, self.bn = nn.Linear(nz, 3 * 8 * 8), nn.BatchNorm1d(3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.bn(self.fc(z.flatten(1)))).view(-1, 3, 8, 8)


class SpectralNormG(nn.Module):
    """BigGAN's G: spectral norm, whose power iteration moves ``u`` in each training-mode forward."""

    def __init__(self, nz: int = 8) -> None:
        super().__init__()
        self.fc = nn.utils.spectral_norm(nn.Linear(nz, 3 * 8 * 8))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z.flatten(1))).view(-1, 3, 8, 8)


class StyleLikeG(nn.Module):
    """StyleGAN's shape: ``G(z, c)`` through ``mapping`` then ``synthesis``, the synthesis drawing
    per-layer noise on every call (``noise_mode='random'``, StyleGAN's default)."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 8, 0, 8, 3
        self.mapping = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2))
        self.synthesis = nn.Linear(16, 3 * 8 * 8)
        self.noise_strength = nn.Parameter(torch.tensor(0.5))

    def forward(self, z: torch.Tensor, c: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        h = self.synthesis(self.mapping(z))
        if noise_mode == "random":
            h = h + self.noise_strength * torch.randn_like(h)
        return h.view(-1, 3, 8, 8)


class ImageD(nn.Module):
    def __init__(self, conditional: bool = False) -> None:
        super().__init__()
        self.conv, self.out = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 1)
        self.embed = nn.Embedding(10, 1) if conditional else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        s = self.out(torch.relu(self.conv(x)).flatten(1)).squeeze(1)
        if self.embed is not None and c is not None and c.dim() == 1:
            s = s + self.embed(c).squeeze(1)
        return s


Case = tuple[nn.Module, nn.Module, GanCall, tuple[int, ...]]
CASES: dict[str, Callable[[], Case]] = {
    "noise in forward": lambda: (NoisyG(), ImageD(), GanCall(), (8,)),
    "BatchNorm G": lambda: (BatchNormG(), ImageD(), GanCall(), (8,)),
    "spectral-norm G": lambda: (SpectralNormG(), ImageD(), GanCall(), (8,)),
    "StyleGAN-like noise": lambda: (StyleLikeG(), ImageD(), StyleGANCall(0), (8,)),
    "DCGAN (built in)": lambda: (DCGANGenerator(nz=8, ngf=4, nc=3, image_size=32), DCGANDiscriminator(ndf=4, nc=3, image_size=32), GanCall(), (8,)),
    "MLP (built in)": lambda: (MLPGenerator(nz=2, hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2), GanCall(), (2,)),
    "conditional DCGAN (built in)": lambda: (ConditionalDCGANGenerator(nz=8, ngf=4, image_size=32), None, GanCall(10, False), (8,)),  # type: ignore[dict-item]
}


def _zero_lr_state(G: nn.Module) -> dict:
    return torch.optim.SGD(G.parameters(), lr=0.0).state_dict()


@pytest.mark.parametrize("g_bn", [BatchNormMode.EVAL, BatchNormMode.BATCH], ids=lambda b: f"g_bn={b.value}")
@pytest.mark.parametrize("case", list(CASES))
def test_a_replayed_zero_step_measures_p_zero_and_flips_nothing(case: str, g_bn: BatchNormMode) -> None:
    torch.manual_seed(0)
    G, D, call, latent = CASES[case]()
    if D is None:
        D = DCGANDiscriminator(ndf=4, nc=3, image_size=32)
    cfg = AuditConfig(batch=8, g_bn=g_bn, seed=3)
    gen = torch.Generator().manual_seed(1)
    Z, C = call.sample(16, latent, gen)
    Z_train, C_train = call.sample(8, latent, gen)
    scorer = Scorer(D)
    x = generate(G, Z, g_bn, call, C)  # the audit's order: x, then the replay, then x'
    steps = replay_steps(G, scorer, _zero_lr_state(G), "SGD", cfg, latent, 2, Z_train, call, C_train)
    for G_k in steps:
        x_next = generate(G_k, Z, g_bn, call, C)
        assert torch.equal(x_next, x), f"{case}: a zero step moved the samples by {float((x_next - x).abs().max()):.3g}"
    on = scorer.conditioned(C, call) if call.binds and call.d_condition else scorer
    m = measure_update(on, x, generate(steps[0], Z, g_bn, call, C), eps=8 / 255, efficiency_steps=0, noise_draws=0)
    assert m.samples["linf"].max() == 0 and not m.samples["flip"].any()


def test_generation_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(5)
    state = torch.get_rng_state()
    generate(NoisyG(), torch.randn(4, 8), BatchNormMode.EVAL)
    torch.manual_seed(5)
    assert torch.equal(torch.get_rng_state(), state)


def _loop(G: nn.Module, D: nn.Module, steps: int) -> None:
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(steps):
        opt_d.zero_grad()
        fake = G(torch.randn(8, 8)).detach()
        loss = nn.functional.softplus(D(fake)).mean() + nn.functional.softplus(-D(torch.rand(8, 3, 8, 8) * 2 - 1)).mean()
        loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        nn.functional.softplus(-D(G(torch.randn(8, 8)))).mean().backward()
        opt_g.step()


class NoisyBatchNormG(NoisyG):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.fc(z.flatten(1)))
        return torch.tanh(h + 0.3 * torch.randn_like(h)).view(-1, 3, 8, 8)


@pytest.mark.parametrize("g_bn", ["eval", "batch"])
def test_a_watched_zero_step_measures_p_zero_and_training_is_bit_identical(tmp_path, g_bn: str) -> None:
    torch.manual_seed(2)
    G, D = NoisyBatchNormG(), ImageD()
    plain_G, plain_D = NoisyBatchNormG(), ImageD()
    plain_G.load_state_dict(G.state_dict()), plain_D.load_state_dict(D.state_dict())
    _loop(plain_G, plain_D, 4)
    rng_plain = torch.get_rng_state()
    cfg = WatchConfig(every=1, n_probes=16, snapshot_every=100, min_norm_every=0, efficiency_steps=0, g_bn=g_bn)
    with ganrobust.watch(G, D, tmp_path / "run", config=cfg):
        _loop(G, D, 4)
    assert torch.equal(torch.get_rng_state(), rng_plain)
    for a, b in zip(list(G.state_dict().values()) + list(D.state_dict().values()),
                    list(plain_G.state_dict().values()) + list(plain_D.state_dict().values())):
        assert torch.equal(a, b)
    run = read_run(tmp_path / "run")
    assert len(run.steps) == 4
    for record in run.steps:
        samples = run.samples(record.step)
        assert samples["linf"].max() == 0 and not samples["flip"].any(), record.step
