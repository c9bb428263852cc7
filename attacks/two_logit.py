"""How third-party attack libraries see a discriminator: a two-logit classifier, sandboxed.

The adapter returns ``[0, m]``, ``m = ±(s − tau)``, with label 0 = "not yet flipped"; an
untargeted attack on it flips the decision. Its cross-entropy is ``softplus(m)``, which the
attack *ascends*: that is the **saturating** (minimax) GAN objective, not the non-saturating
one — its gradient ``σ(m)·∇m`` vanishes exactly where a sample is far from flipping
(``m ≪ 0``), which is why a saturated discriminator masks cross-entropy backends (DESIGN.md:
attack the margin, not a cross-entropy). Every backend call runs in :func:`sandbox`: on a frozen deep copy
of D (no parameter of the user's module is touched, no ``.grad`` appears), in scoring state
(eval mode; BatchNorm as the scorer says), with Python, NumPy and torch RNG states saved and
restored (torchattacks APGD/FAB reseed the global RNG) and the backend seeded from the call.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ganrobust.attacks.base import Attack
from ganrobust.conventions import Direction, Norm, NormLike
from ganrobust.scorer import Scorer


class TwoLogit(nn.Module):
    """``u -> [0, ±(s(x) − tau)]``; with ``unit_space`` the input is ``u ∈ [0, 1]``,
    ``x = lo + u·(hi − lo)`` (torchattacks assumes [0, 1] inputs). With ``sample_shape`` the
    backend sees a flattened ``(B, d, 1, 1)`` view (torchattacks' l2 attacks assume 4-D
    images) that is reshaped back before scoring."""

    def __init__(self, scorer: Scorer, direction: Direction, *, unit_space: bool,
                 sample_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self._sample_shape = sample_shape
        self.d = scorer.module  # registered so backends find parameters and device
        self._scorer = scorer
        self._direction = direction
        self._unit_space = unit_space
        self._tau = scorer.tau
        # not recursive: a backend that sees eval mode leaves the mode alone, so BatchNorm
        # stays as the scorer's session set it
        self.training = False

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        lo, width = self._scorer.bounds.lo, self._scorer.bounds.width
        x = lo + u * width if self._unit_space else u
        if self._sample_shape is not None:
            x = x.reshape((x.shape[0],) + self._sample_shape)
        m = self._direction.margin(self._scorer.forward(x), self._tau)
        return torch.stack([torch.zeros_like(m), m], dim=1)  # (B, 2)


@contextlib.contextmanager
def sandbox(scorer: Scorer, seed: int) -> Iterator[Scorer]:
    """A frozen copy of ``scorer`` in scoring state, with all global RNGs restored on exit."""
    frozen = scorer.frozen()
    py_state, np_state = random.getstate(), np.random.get_state()
    device = frozen.device
    grad_mode = torch.is_grad_enabled()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            with frozen.session(), torch.enable_grad():
                yield frozen
    finally:
        torch.set_grad_enabled(grad_mode)
        random.setstate(py_state)
        np.random.set_state(np_state)


def scalar_budget(eps: torch.Tensor, name: str) -> float:
    """Backends take one budget per call."""
    if not torch.allclose(eps, eps[0].expand_as(eps)):
        raise ValueError(f"{name} takes one eps for the whole batch, got per-sample budgets; use a native attack")
    return float(eps[0])


@dataclass(frozen=True)
class BackendSpec:
    """One attack of a backend library: its norms, the loss it differentiates, whether it
    searches for minimum norms, and how to build it."""

    norms: tuple[Norm, ...]
    loss: str
    minimum_norm: bool
    build: Callable[..., Any]


class BackendAttack(Attack):
    """A named attack of a backend library (``specs``), validated where it enters."""

    specs: dict[str, BackendSpec] = {}

    def __init__(self, name: str, *, norm: NormLike = Norm.LINF, **options: Any) -> None:
        if name not in self.specs:
            raise ValueError(f"expected a {self.backend} attack among {sorted(self.specs)}, got {name!r}")
        super().__init__(norm=norm)
        spec = self.specs[name]
        if self.norm not in spec.norms:
            raise ValueError(f"{self.backend} {name} supports {[n.value for n in spec.norms]}, got {self.norm.value!r}")
        self.name = name
        self.options = options
        self._spec = spec

    @property  # type: ignore[override]
    def minimum_norm(self) -> bool:
        return self._spec.minimum_norm

    @property  # type: ignore[override]
    def loss(self) -> str:
        return self._spec.loss
