"""The hook: zero interference, the loops people write, and what it records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import ganrobust
from ganrobust.config import WatchConfig
from ganrobust.runs import read_run
from ganrobust.config import TrainConfig
from ganrobust.train import train

SMALL = dict(steps=12, batch=16, nz=16, ngf=8, ndf=8, n_data=256)
FAST = WatchConfig(every=2, n_probes=16, snapshot_every=6, min_norm_every=2, min_norm_probes=4, efficiency_steps=2)


def _equal_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _train_pair(tmp_path, **overrides):
    cfg = TrainConfig(**{**SMALL, **overrides})
    plain = train(cfg)
    rng_plain = torch.get_rng_state()
    watched = train(cfg, run_dir=tmp_path / "run", watch_config=FAST)
    return plain, rng_plain, watched, torch.get_rng_state()


def test_dcgan_training_is_bit_identical_with_the_hook(tmp_path) -> None:
    """BatchNorm D kept in train mode during G's step, as in pytorch/examples."""
    plain, rng_plain, watched, rng_watched = _train_pair(tmp_path)
    assert _equal_state(plain.G, watched.G) and _equal_state(plain.D, watched.D)
    for a, b in zip(plain.opt_g.state.values(), watched.opt_g.state.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert torch.equal(rng_plain, rng_watched)
    assert plain.history == watched.history
    assert len(read_run(tmp_path / "run").steps) == SMALL["steps"] // FAST.every


def test_wgan_with_clipping_and_five_critic_steps_is_bit_identical(tmp_path) -> None:
    plain, rng_plain, watched, rng_watched = _train_pair(tmp_path, loss="wgan", n_critic=5, steps=6)
    assert _equal_state(plain.G, watched.G) and _equal_state(plain.D, watched.D)
    assert torch.equal(rng_plain, rng_watched)
    run = read_run(tmp_path / "run")
    assert [s.raw["d_steps"] for s in run.steps] == [5, 5, 5]
    assert run.manifest["score"]["kind"] == "critic"
    assert all(math.isfinite(s.raw["tau"]) for s in run.steps)


def test_snapshot_is_the_d_that_g_sees_after_clipping(tmp_path) -> None:
    train(TrainConfig(**{**SMALL, "loss": "wgan", "n_critic": 2, "steps": 6}), run_dir=tmp_path / "run",
          watch_config=FAST)
    from ganrobust.runs.store import load_state

    d = load_state(tmp_path / "run" / "snapshots" / "d_0000006.safetensors")
    weights = [v for k, v in d.items() if k.endswith("weight") and v.is_floating_point()]
    assert weights and max(w.abs().max().item() for w in weights) <= 0.01 + 1e-7


def _tiny_loop(G, D, opt_g, opt_d, steps, *, g_first=False, scaler=None, wrap=None):
    torch.manual_seed(0)
    for _ in range(steps):
        def d_step():
            opt_d.zero_grad()
            loss = nn.functional.softplus(D(G(torch.randn(8, 4)).detach())).mean() + \
                nn.functional.softplus(-D(torch.rand(8, 2))).mean()
            loss.backward()
            opt_d.step()

        def g_step():
            opt_g.zero_grad()
            loss = nn.functional.softplus(-D(G(torch.randn(8, 4)))).mean()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt_g)
                scaler.update()
            else:
                loss.backward()
                (wrap(opt_g) if wrap else opt_g).step()

        for fn in ((g_step, d_step) if g_first else (d_step, g_step)):
            fn()


def _mlp_pair():
    torch.manual_seed(1)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    return G, D, torch.optim.Adam(G.parameters(), 1e-3), torch.optim.SGD(D.parameters(), 1e-2)


CFG2D = FAST.replace(bounds=(-4, 4), every=1)


def test_generator_before_discriminator_loop_and_every_filter(tmp_path) -> None:
    G, D, opt_g, opt_d = _mlp_pair()
    with ganrobust.watch(G, D, tmp_path / "a", config=CFG2D.replace(every=3, snapshot_every=100)):
        _tiny_loop(G, D, opt_g, opt_d, 9, g_first=True)
    run = read_run(tmp_path / "a")
    assert [s.step for s in run.steps] == [3, 6, 9]
    assert run.complete and run.steps[0].raw["d_steps"] == 1
    assert all(s.raw["probe"]["n"] == CFG2D.n_probes for s in run.steps)
    assert "train" in run.steps[0].raw  # the latents of the step itself were captured


def test_optimizer_wrappers_like_lightning_are_seen(tmp_path) -> None:
    """Lightning's LightningOptimizer ends in the raw optimizer's step(); so does this wrapper."""
    class Wrapped:
        def __init__(self, opt: torch.optim.Optimizer) -> None:
            self.opt = opt

        def step(self) -> None:
            self.opt.step()

    G, D, opt_g, opt_d = _mlp_pair()
    with ganrobust.watch(G, D, tmp_path / "l", config=CFG2D):
        _tiny_loop(G, D, opt_g, opt_d, 3, wrap=Wrapped)
    assert len(read_run(tmp_path / "l").steps) == 3


def test_steps_skipped_by_a_grad_scaler_leave_no_record(tmp_path) -> None:
    G, D, opt_g, opt_d = _mlp_pair()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    with torch.no_grad():
        G[2].bias.fill_(float("inf"))  # every G gradient is non-finite: the scaler skips every step
    with ganrobust.watch(G, D, tmp_path / "s", config=CFG2D):
        _tiny_loop(G, D, opt_g, opt_d, 3, scaler=scaler)
    run = read_run(tmp_path / "s")
    assert run.steps == [] and run.complete


def test_ddp_wrapped_modules_are_unwrapped(tmp_path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        G, D, _, _ = _mlp_pair()
        G, D = DDP(G), DDP(D)
        opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.SGD(D.parameters(), 1e-2)
        with ganrobust.watch(G, D, tmp_path / "d", config=CFG2D) as w:
            assert w.G is G.module and w.D is D.module
            _tiny_loop(G, D, opt_g, opt_d, 2)
        assert len(read_run(tmp_path / "d").steps) == 2
    finally:
        dist.destroy_process_group()


def test_hook_leaves_no_grad_mode_or_statistic_behind(tmp_path) -> None:
    G, D, opt_g, opt_d = _mlp_pair()
    D.train()
    G.eval()
    with ganrobust.watch(G, D, tmp_path / "h", config=CFG2D) as w:
        _tiny_loop(G, D, opt_g, opt_d, 1)
        grads = [None if p.grad is None else p.grad.clone() for p in G.parameters()]
        w.observer.pre_hook(opt_g, (), {})  # an extra measured step on the current state
        w.observer.post_hook(opt_g, (), {})
        for g, p in zip(grads, G.parameters()):
            assert (g is None and p.grad is None) or torch.equal(g, p.grad)
        assert D.training and not G.training


def test_records_carry_every_field_with_intervals(tmp_path) -> None:
    G, D, opt_g, opt_d = _mlp_pair()
    with ganrobust.watch(G, D, tmp_path / "r", config=CFG2D.replace(min_norm_every=1)):
        _tiny_loop(G, D, opt_g, opt_d, 2)
    run = read_run(tmp_path / "r")
    step = run.steps[0]
    for key in ("aar", "flip_rate", "noise_flip_rate", "linf", "l2", "cos_z", "efficiency", "eps_star", "ratio"):
        est = step.raw["probe"][key]
        # a median's interval also states its exact coverage, or why there is none (stats.Estimate.to_dict)
        assert {"value", "ci_low", "ci_high", "n"} <= set(est) <= {"value", "ci_low", "ci_high", "n", "coverage", "note"}, key
    samples = run.samples(step.step)
    assert set(samples) >= {"s", "s_next", "flip", "accidental", "cos_grad", "efficiency", "noise_flip", "eps_star"}
    attacked = samples["fake"] & ~np.isnan(samples["eps_star"])
    assert attacked.any() and np.isfinite(samples["eps_star"][attacked]).all()
    assert torch.equal(run.probes(), read_run(tmp_path / "r").probes())
    manifest = run.manifest
    for key in ("schema", "ganrobust", "torch", "config", "models", "data_range", "score", "seeds"):
        assert key in manifest
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert ck["optimizer_G"] is not None and ck["arch"]["generator"]["class"].endswith("Sequential")


def test_probes_are_identical_under_a_seed(tmp_path) -> None:
    for name in ("p1", "p2"):
        G, D, opt_g, opt_d = _mlp_pair()
        with ganrobust.watch(G, D, tmp_path / name, config=CFG2D):
            _tiny_loop(G, D, opt_g, opt_d, 2)
    a, b = read_run(tmp_path / "p1"), read_run(tmp_path / "p2")
    assert torch.equal(a.probes(), b.probes())
    assert a.steps[1].raw["probe"] == b.steps[1].raw["probe"]


def test_ring_buffer_is_preallocated_and_bounded(tmp_path) -> None:
    G, D, opt_g, opt_d = _mlp_pair()
    d_bytes = sum(t.numel() * t.element_size() for t in D.state_dict().values())
    with ganrobust.watch(G, D, tmp_path / "b", config=CFG2D.replace(ring_size=3)) as w:
        slots = [[t.data_ptr() for t in slot] for slot in w.store.ring.slots]
        _tiny_loop(G, D, opt_g, opt_d, 7)
        assert [[t.data_ptr() for t in slot] for slot in w.store.ring.slots] == slots  # no allocation per step
        assert w.store.ring.nbytes == 3 * d_bytes


def test_options_are_checked_where_they_enter(tmp_path) -> None:
    G, D, _, _ = _mlp_pair()
    with pytest.raises(ValueError, match="unknown watch options"):
        ganrobust.watch(G, D, tmp_path / "x", evrey=2)
    with pytest.raises(ValueError, match="every >= 1"):
        ganrobust.watch(G, D, tmp_path / "x", every=0)
    with pytest.raises(ValueError, match="real="):
        ganrobust.watch(G, D, tmp_path / "x", kind="critic")


def test_a_failing_measurement_is_recorded_and_training_goes_on(tmp_path) -> None:
    class NoLatent(nn.Module):  # G's forward takes no latent batch: the hook cannot make probes
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, n: int) -> torch.Tensor:
            return self.lin(torch.randn(n, 4))

    G, D = NoLatent(), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    opt_g = torch.optim.SGD(G.parameters(), 0.1)
    with pytest.warns(RuntimeWarning, match="latent_shape"):
        with ganrobust.watch(G, D, tmp_path / "e", config=CFG2D):
            for _ in range(2):
                opt_g.zero_grad()
                D(G(8)).mean().backward()
                opt_g.step()
    lines = [json.loads(x) for x in (tmp_path / "e" / "steps.jsonl").read_text().splitlines()]
    assert lines[0]["kind"] == "error" and "latent_shape" in lines[0]["error"]


def test_tensorboard_scalars_per_measured_step(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    G, D, opt_g, opt_d = _mlp_pair()
    with ganrobust.watch(G, D, tmp_path / "t", config=CFG2D, tensorboard=tmp_path / "tb"):
        _tiny_loop(G, D, opt_g, opt_d, 3)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("ganrobust/flip_rate")] == [1, 2, 3]
    assert "ganrobust/cos_z" in events.Tags()["scalars"]


# -- what the records mean: persistence, the snapshot's scores --------------------------------

def _linear_pair():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 2), nn.Tanh())
    D = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    with torch.no_grad():
        D[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        D[0].bias.zero_()
    return G, D, torch.optim.SGD(G.parameters(), lr=0.5), torch.optim.SGD(D.parameters(), lr=1.0)


def _shifting_loop(G, D, opt_g, opt_d, steps: int, shift: float) -> None:
    """G ascends D (loss −s: its gradient does not depend on D's bias); D's step only adds
    ``shift`` to its bias, so D_{t+1} = D_t + shift exactly."""
    torch.manual_seed(1)
    for _ in range(steps):
        opt_g.zero_grad()
        (-D(G(torch.randn(16, 4)))).mean().backward()
        opt_g.step()
        opt_d.zero_grad()
        (-shift * D[0].bias).sum().backward()
        opt_d.step()


def _persists(path) -> list[dict]:
    lines = [json.loads(x) for x in (path / "steps.jsonl").read_text().splitlines()]
    return [x for x in lines if x["kind"] == "persists"]


def test_persistence_asks_whether_the_next_d_still_says_real(tmp_path) -> None:
    cfg = CFG2D.replace(bounds=(-1, 1), min_norm_every=0, efficiency_steps=0)
    for shift, expected in ((1000.0, 1.0), (-1000.0, 0.0)):
        G, D, opt_g, opt_d = _linear_pair()
        with ganrobust.watch(G, D, tmp_path / f"p{shift}", config=cfg):
            _shifting_loop(G, D, opt_g, opt_d, 3, shift)
        records = _persists(tmp_path / f"p{shift}")
        assert [r["step"] for r in records] == [1, 2]
        flipped = [r for r in records if r["persists"]["n"]]
        assert flipped, "the test needs updates that flip probes"
        assert all(r["persists"]["value"] == expected for r in flipped)


def test_a_critic_threshold_is_calibrated_on_the_next_snapshot(tmp_path) -> None:
    """D_{t+1} = D_t + c. A critic's decisions do not change when all its scores shift, so
    persistence must not depend on c; D_t's threshold carried over would call every sample
    fake at c = −1000."""
    cfg = CFG2D.replace(bounds=(-1, 1), min_norm_every=0, efficiency_steps=0, kind="critic")
    real = torch.full((16, 2), 0.8)
    found = {}
    for shift in (0.0, -1000.0):
        G, D, opt_g, opt_d = _linear_pair()
        with ganrobust.watch(G, D, tmp_path / f"c{shift}", config=cfg, real=real):
            _shifting_loop(G, D, opt_g, opt_d, 3, shift)
        found[shift] = _persists(tmp_path / f"c{shift}")
    assert any(r["persists"]["n"] for r in found[0.0])
    assert [r["persists"] for r in found[0.0]] == [r["persists"] for r in found[-1000.0]]
    for a, b in zip(found[0.0], found[-1000.0]):  # the threshold follows the shift exactly:
        # the persistence of step t is scored by D_{t+1}, which has taken t shifting D steps
        assert b["tau"] == pytest.approx(a["tau"] - 1000.0 * a["step"], abs=1e-3)


def test_the_update_is_scored_by_the_snapshot_not_the_live_d(tmp_path) -> None:
    """An edit to D after the snapshot (here inside G's optimizer step, after ganrobust's
    pre-hook) must not reach s or s_next: both come from D_t."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    G, D, opt_g, opt_d = _linear_pair()

    def tamper(optimizer, _args, _kwargs):
        if optimizer is opt_g:
            with torch.no_grad():
                D[0].bias.add_(1000.0)

    cfg = CFG2D.replace(bounds=(-1, 1), min_norm_every=0, efficiency_steps=0)
    with ganrobust.watch(G, D, tmp_path / "t", config=cfg):
        handle = register_optimizer_step_pre_hook(tamper)
        try:
            _shifting_loop(G, D, opt_g, opt_d, 2, 0.0)
        finally:
            handle.remove()
    run = read_run(tmp_path / "t")
    first = run.samples(1)
    assert np.abs(first["s"]).max() < 10 and np.abs(first["s_next"]).max() < 10  # D_t: bias 0
    second = run.samples(2)
    assert 900 < second["s"].min() and 900 < second["s_next"].min()  # D_2 carries the first edit
