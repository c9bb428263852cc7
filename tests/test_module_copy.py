"""Copies of a user's D and G work for every module trait a real codebase has (spectral norm after a
training forward, weight norm, parametrizations, forward hooks, buffers), give exactly the same
outputs, and leave the original untouched; every place that copies a module goes through them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, spectral_norm, weight_norm

import ganrobust
from ganrobust.module_copy import copy_module


def _hooked(module: nn.Module) -> nn.Module:
    module.register_forward_hook(lambda _m, _inp, out: out * 0.5 + 0.25)
    return module


WRAPS = {
    "spectral_norm": lambda: spectral_norm(nn.Conv2d(3, 4, 3, padding=1)),
    "weight_norm": lambda: weight_norm(nn.Conv2d(3, 4, 3, padding=1)),
    "parametrizations.spectral_norm": lambda: parametrizations.spectral_norm(nn.Conv2d(3, 4, 3, padding=1)),
    "parametrizations.weight_norm": lambda: parametrizations.weight_norm(nn.Conv2d(3, 4, 3, padding=1)),
    "forward hook": lambda: _hooked(nn.Conv2d(3, 4, 3, padding=1)),
    "buffers (BatchNorm)": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)),
}


def _discriminator(first: nn.Module) -> nn.Module:
    return nn.Sequential(first, nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.nn.utils.weight_norm is deprecated, still used
@pytest.mark.parametrize("trait", list(WRAPS))
def test_copy_after_a_training_forward_gives_the_same_outputs(trait: str) -> None:
    torch.manual_seed(0)
    D = _discriminator(WRAPS[trait]()).train()
    x = torch.randn(5, 3, 8, 8)
    D(x).mean().backward()  # a training step's forward and backward: graph-attached weights remain
    before = {k: v.clone() for k, v in D.state_dict().items()}
    copied = copy_module(D)
    assert {k: v for k, v in copied.state_dict().items()}.keys() == before.keys()
    for k, v in D.state_dict().items():
        assert torch.equal(v, before[k]), k  # the original is only read
    D.eval(), copied.eval()
    with torch.no_grad():
        assert torch.equal(copied(x), D(x))
    # a copy is independent: changing it leaves the original alone
    with torch.no_grad():
        for p in copied.parameters():
            p.add_(1.0)
    for k, v in D.state_dict().items():
        assert torch.equal(v, before[k]), k


#: the modules allowed to call copy.deepcopy: the copy helper itself, and the optimizer state's copy
DEEPCOPY_ALLOWED = {"module_copy.py", "optimizers.py"}


def test_modules_are_copied_only_through_copy_module() -> None:
    root = Path(ganrobust.__file__).parent.parent
    sources = [f for folder in ("ganrobust", "attacks", "cli") for f in sorted((root / folder).rglob("*.py"))]
    assert len(sources) > 30
    for path in sources:
        if path.name in DEEPCOPY_ALLOWED:
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "deepcopy"]
        assert not calls, (f"{path.relative_to(root)}:{calls[0].lineno} copies with copy.deepcopy; "
                           f"use ganrobust.module_copy.copy_module")


def test_a_spectral_norm_pair_after_a_training_step_is_attacked_and_replayed() -> None:
    """SNGAN/BigGAN: spectral norm in D and G, audited right after a training step (mimicry's
    checkpoint of a live model): the frozen scorer, the attacks and the replay all copy them."""
    from ganrobust.attacks.robustness_curve import robustness_curve
    from ganrobust.config import AuditConfig
    from ganrobust.measure.replay import param_space_attack, replay_steps
    from ganrobust.conventions import BatchNormMode
    from ganrobust.scorer import Scorer

    torch.manual_seed(0)
    D = _discriminator(spectral_norm(nn.Conv2d(3, 4, 3, padding=1))).train()
    G = nn.Sequential(spectral_norm(nn.Linear(8, 3 * 8 * 8)), nn.Tanh(), nn.Unflatten(1, (3, 8, 8))).train()
    z = torch.randn(8, 8)
    nn.functional.softplus(-D(G(z))).mean().backward()  # G's training step leaves both graph-attached
    x = G(z).detach()
    curve = robustness_curve(Scorer(D), x, (2 / 255, 8 / 255), norm="linf", direction="fake->real")
    assert len(curve.rows()) == 2
    steps = replay_steps(G, Scorer(D), None, None, AuditConfig(batch=8), (8,), 2, z)
    assert len(steps) == 2
    param_space_attack(G, Scorer(D), z, 1e-3, BatchNormMode.EVAL)
