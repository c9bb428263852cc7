"""The replay of G's next step with every optimizer torch.optim ships: equal to a real step from
the same state, or a clean refusal that names ``--g-optimizer`` — never a silent Adam."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from ganrobust import Scorer
from ganrobust.config import AuditConfig
from ganrobust.measure.replay import generator_loss, replay_steps
from ganrobust.runs.checkpoints import CheckpointError

# every Optimizer subclass torch.optim exports, enumerated independently of ganrobust's table
ALL = sorted(name for name, cls in vars(torch.optim).items()
             if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer)
Z_DIM, X_DIM = 4, 6


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)  # bias-free 2-D weights only: Muon can be built on them too
    G = nn.Sequential(nn.Linear(Z_DIM, 8, bias=False), nn.Tanh(), nn.Linear(8, X_DIM, bias=False), nn.Tanh())
    D = nn.Sequential(nn.Linear(X_DIM, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Flatten(0))
    return G, D


def _loss(G: nn.Module, D: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return generator_loss("ns", D(G(z)))


def _trained_state(name: str) -> tuple[nn.Module, nn.Module, dict[str, Any]] | None:
    """G after three real steps of ``name`` (non-default hyperparameters where it has lr), and its state."""
    G, D = _pair()
    d = copy.deepcopy(D).requires_grad_(False)
    try:
        opt = getattr(torch.optim, name)(G.parameters(), lr=3e-3) if name != "LBFGS" else torch.optim.LBFGS(G.parameters())
    except Exception:
        return None
    gen = torch.Generator().manual_seed(1)
    try:
        for _ in range(3):
            z = torch.randn(8, Z_DIM, generator=gen)

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = _loss(G, d, z)
                loss.backward()
                return loss

            opt.step(closure)
    except RuntimeError:  # SparseAdam refuses dense gradients: its (empty) state is still saved
        pass
    return G, D, copy.deepcopy(opt.state_dict())


def _real_next_step(G: nn.Module, D: nn.Module, name: str, state: dict[str, Any], z: torch.Tensor) -> nn.Module:
    G = copy.deepcopy(G).train()
    opt = getattr(torch.optim, name)(G.parameters())
    opt.load_state_dict(copy.deepcopy(state))
    opt.zero_grad()
    _loss(G, copy.deepcopy(D).eval().requires_grad_(False), z).backward()
    opt.step()
    return G


@pytest.mark.parametrize("recorded", [True, False], ids=["class recorded", "foreign state"])
@pytest.mark.parametrize("name", ALL)
def test_replay_equals_a_real_step_or_refuses_cleanly(name: str, recorded: bool) -> None:
    made = _trained_state(name)
    if made is None:
        pytest.skip(f"{name} cannot be built on a small G")
    G, D, state = made
    z = torch.randn(8, Z_DIM, generator=torch.Generator().manual_seed(7))
    # the CLI's lr and betas differ from the state's: the replay must take the loaded ones
    cfg = AuditConfig(batch=8, g_lr=0.5, g_betas=(0.1, 0.2))
    try:
        (replayed,) = replay_steps(G, Scorer(D), state, name if recorded else None, cfg, (Z_DIM,), 1, z)
    except (CheckpointError, ValueError) as err:
        assert "g_optimizer=" in str(err) and "g_optimizer" in getattr(err, "params", ()), str(err)
        assert "\n" not in str(err)
        # a refusal only where the replay really cannot be exact
        assert name in ("LBFGS", "SparseAdam") or (not recorded and name == "Muon"), (name, str(err))
        return
    by_hand = _real_next_step(G, D, name, state, z)
    for a, b in zip(replayed.parameters(), by_hand.parameters()):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, b) for a, b in zip(G.parameters(), replayed.parameters())), name


def test_an_unknown_or_mistaken_class_is_refused_naming_the_option() -> None:
    G, D, state = _trained_state("Adamax")  # type: ignore[misc]
    z = torch.randn(8, Z_DIM)
    for wrong, words in (("Adam", "does not fit"), ("Lion", "torch.optim")):
        with pytest.raises(ValueError, match="g_optimizer=") as err:
            replay_steps(G, Scorer(D), state, wrong, AuditConfig(batch=8), (Z_DIM,), 1, z)
        assert words in str(err.value)
