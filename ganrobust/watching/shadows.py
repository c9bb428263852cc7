"""The hook's snapshot store: the ring of D snapshots, G's parameters before and after a step, and
the shadow copies of G and D that every measurement runs on.

Everything is allocated once, when the watch starts (:mod:`ganrobust.snapshots`): taking D_t is
one ``_foreach_copy_`` into the ring slot of step ``t`` (``t mod ring_size``), θ one copy into its
buffer, and measuring loads a snapshot into a shadow copy. The user's modules are only read.
"""

from __future__ import annotations

import torch
from torch import nn

from ganrobust.config import WatchConfig
from ganrobust.gan_call import GanCall
from ganrobust.module_copy import copy_module
from ganrobust.module_state import evaluation_state, fixed_noise
from ganrobust.snapshots import SnapshotRing, StateView


class SnapshotStore:
    """D's ring, θ (and θ' as rank 0 has it, under DDP) and the shadow G and D."""

    def __init__(self, G: nn.Module, D: nn.Module, config: WatchConfig, call: GanCall, *,
                 keep_theta_next: bool) -> None:
        self.config, self.call = config, call
        self.d_view, self.g_view = StateView(D), StateView(G)
        self.ring = SnapshotRing(self.d_view, config.ring_size)
        self.theta = self.g_view.empty_like()
        # DDP: θ' as rank 0 has it (the live G's buffers move with each rank's own batch)
        self.theta_next = self.g_view.empty_like() if keep_theta_next else None
        self.shadow_d = copy_module(D).requires_grad_(False)
        self.shadow_g = copy_module(G).requires_grad_(False)
        self._shadow_d_view, self._shadow_g_view = StateView(self.shadow_d), StateView(self.shadow_g)

    def take_d(self, step: int) -> list[torch.Tensor]:
        """D_t, into step ``t``'s ring slot: as G's step sees it."""
        return self.ring.take(step)

    def d_of(self, step: int) -> list[torch.Tensor]:
        """Step ``t``'s D snapshot; ``KeyError`` once the ring has reused its slot."""
        return self.ring.get(step)

    def take_theta(self) -> list[torch.Tensor]:
        """θ, G's state before the step."""
        self.g_view.copy_to(self.theta)
        return self.theta

    def take_theta_next(self) -> list[torch.Tensor] | None:
        """θ' into its own buffer when one is kept (DDP), else None: the live G is θ' then."""
        if self.theta_next is not None:
            self.g_view.copy_to(self.theta_next)
        return self.theta_next

    @property
    def after(self) -> list[torch.Tensor]:
        """θ', after the step: the kept copy under DDP, the live G's state otherwise."""
        return self.g_view.tensors if self.theta_next is None else self.theta_next

    def load_d(self, snapshot: list[torch.Tensor]) -> None:
        """Make the shadow D (the scorer's module) the given snapshot."""
        self._shadow_d_view.load(snapshot)

    def generate(self, theta: list[torch.Tensor], z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``G_θ(z, c)`` on the shadow G, in G's configured BatchNorm mode, with one fixed noise draw
        (x and x' see the same noise)."""
        self._shadow_g_view.load(theta)
        with evaluation_state(self.shadow_g, self.config.g_bn), fixed_noise(z.device):
            return self.call.generate(self.shadow_g, z, c).detach()

    @property
    def nbytes(self) -> dict[str, int]:
        """The manifest's ``snapshot_bytes``: one D, one G and the whole ring."""
        return {"D": self.d_view.nbytes, "G": self.g_view.nbytes, "ring": self.ring.nbytes}
