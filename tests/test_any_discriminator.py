"""Any D, unmodified: a D that calls ``.view`` on a conv feature map (BigGAN-PyTorch, PyTorch-GAN's
dcgan) is attacked in its own layout; a D with a minibatch standard deviation layer grouping the
batch by 4 (StyleGAN) is scored and attacked at any batch size, its coupling detected, named and
reported. Stand-ins written here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganrobust
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.projected_gradient_descent import ProjectedGradientDescentAttack
from ganrobust.config import AuditConfig, WatchConfig
from ganrobust.measure.audit import audit_gan
from ganrobust.runs import read_run
from ganrobust.scorer import Scorer


class ViewD(nn.Module):
    """Flattens its conv features with ``.view``, which refuses a channels-last tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.out = nn.Conv2d(3, 8, 4, 2, 1), nn.Linear(8 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.conv(x), 0.2)
        return self.out(h.view(h.shape[0], -1))


class FlattenD(ViewD):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(nn.functional.leaky_relu(self.conv(x), 0.2).flatten(1))


class MinibatchStdLayer(nn.Module):
    """The trait of StyleGAN's layer: the standard deviation over groups of ``group_size`` samples
    (``x.view(G, -1, ...)``, so the batch must be a multiple of G) appended as a feature map."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        y = x.view(g, -1, c, h, w)
        std = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (N / G,)
        return torch.cat([x, std.view(-1, 1, 1, 1).repeat(g, 1, h, w)], dim=1)


class StdD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.std = nn.Conv2d(3, 8, 4, 2, 1), MinibatchStdLayer(4)
        self.out = nn.Linear(9 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.std(nn.functional.leaky_relu(self.conv(x), 0.2)).flatten(1))


class BatchMeanD(FlattenD):
    """Coupled by a layer no one names: features centred on the batch mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.conv(x), 0.2).flatten(1)
        return self.out(h - h.mean(0, keepdim=True))


def _x(n: int = 10) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_a_d_with_view_on_a_conv_feature_map_is_attacked_in_its_own_layout() -> None:
    torch.manual_seed(0)
    D, x = ViewD(), _x()
    scorer = Scorer(D)
    result = ProjectedGradientDescentAttack(norm="linf", steps=5)(scorer, x, eps=0.3)
    assert result.success_rate.n > 0 and result.success[result.attacked].any()
    assert scorer.checks.channels_last is False  # checked once, dropped silently
    assert all(p.is_contiguous() for p in D.parameters())  # the user's module keeps its layout
    with torch.no_grad():
        assert torch.equal(scorer.score(x), D(x).squeeze(1))


def test_channels_last_is_kept_where_it_gives_the_same_scores() -> None:
    torch.manual_seed(0)
    scorer = Scorer(FlattenD())
    work, x_work = scorer.for_attack(_x())
    assert scorer.checks.channels_last is True and x_work.is_contiguous(memory_format=torch.channels_last)


def test_minibatch_std_d_is_scored_and_attacked_at_any_batch_size() -> None:
    torch.manual_seed(0)
    D, x = StdD(), _x(10)  # 10 = not a multiple of the group of 4
    scorer = Scorer(D)
    s = scorer.score(x)
    with torch.no_grad():  # padded with its own first rows to 12, the padding's scores dropped
        assert torch.equal(s, D(torch.cat([x, x[:2]])).squeeze(1)[:10])
    assert scorer.checks.group == 4 and scorer.whole_batch
    coupling = scorer.coupling_record()
    assert coupling["coupled"] and "MinibatchStdLayer" in coupling["layer"] and "group 4" in coupling["layer"]
    assert coupling["pad_to_multiple_of"] == 4
    result = MinimumNormAttack(norm="linf", bisection_steps=3)(scorer, x, seed=0)
    attacked = result.attacked
    assert attacked.any() and result.success[attacked].all()
    assert torch.isfinite(result.norms[attacked]).all()
    # each minimum norm holds for the user's D scoring the whole (padded) batch
    with torch.no_grad():
        s_adv = D(torch.cat([result.x_adv, result.x_adv[:2]])).squeeze(1)[:10]
    assert bool((s_adv[attacked] >= 0).all())


@pytest.mark.parametrize("D, coupled, layer", [(BatchMeanD, True, None), (FlattenD, False, None)],
                         ids=["batch-mean D", "uncoupled D"])
def test_coupling_is_measured_and_unknown_layers_are_said_to_be_unknown(D, coupled, layer) -> None:
    torch.manual_seed(0)
    scorer = Scorer(D())
    scorer.score(_x(8))
    record = scorer.coupling_record()
    assert record["coupled"] is coupled and record["layer"] == layer and record["measured"]
    assert scorer.whole_batch is coupled


def test_audit_and_watch_report_the_coupling(tmp_path) -> None:
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    D = StdD()
    cfg = AuditConfig(n_probes=10, batch=6, k_steps=1, pgd_iterations=2, efficiency_steps=1, min_norm_probes=4,
                      eps_grid=(8 / 255,), precision_check=0)
    result = audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=cfg)
    assert result["batch_coupling"]["coupled"] and "MinibatchStdLayer" in result["batch_coupling"]["layer"]
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    watch_cfg = WatchConfig(every=1, n_probes=10, snapshot_every=100, min_norm_every=1, min_norm_probes=4,
                            efficiency_steps=1)
    with ganrobust.watch(G, D, tmp_path / "run", config=watch_cfg):
        for _ in range(2):
            opt_d.zero_grad()
            nn.functional.softplus(D(G(torch.randn(8, 4)).detach())).mean().backward()
            opt_d.step()
            opt_g.zero_grad()
            nn.functional.softplus(-D(G(torch.randn(8, 4)))).mean().backward()
            opt_g.step()
    run = read_run(tmp_path / "run")
    assert len(run.steps) == 2 and not [e for e in run.manifest.get("errors", []) or []]
    assert run.manifest["batch_coupling"]["coupled"] and run.manifest["batch_coupling"]["pad_to_multiple_of"] == 4
