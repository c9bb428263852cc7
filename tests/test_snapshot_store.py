"""The hook's snapshot store alone: a preallocated ring that evicts by step, θ buffers, shadow copies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganrobust.config import WatchConfig
from ganrobust.gan_call import DEFAULT
from ganrobust.watching.shadows import SnapshotStore


def _store(ring_size: int = 2, **kw):
    torch.manual_seed(0)
    G, D = nn.Linear(4, 2), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    return G, D, SnapshotStore(G, D, WatchConfig(ring_size=ring_size), DEFAULT, keep_theta_next=False, **kw)


def test_the_ring_keeps_the_last_ring_size_steps_and_evicts_the_step_whose_slot_is_reused() -> None:
    G, D, store = _store(ring_size=2)
    slots = [[t.data_ptr() for t in slot] for slot in store.ring.slots]
    states = {}
    for step in (1, 2, 3):
        with torch.no_grad():
            D[0].weight.add_(1.0)
        store.take_d(step)
        states[step] = D[0].weight.clone()
    with pytest.raises(KeyError, match="step 1 is no longer in the ring"):
        store.d_of(1)  # step 3 took slot 3 mod 2 = 1
    names = store.d_view.names
    for step in (2, 3):
        assert torch.equal(store.d_of(step)[names.index("0.weight")], states[step])  # copies, not views
    assert [[t.data_ptr() for t in slot] for slot in store.ring.slots] == slots  # no allocation per step
    assert store.nbytes == {"D": store.d_view.nbytes, "G": store.g_view.nbytes, "ring": 2 * store.d_view.nbytes}


def test_generate_runs_the_given_theta_on_the_shadow_and_leaves_the_live_g_alone() -> None:
    G, D, store = _store()
    z = torch.randn(5, 4)
    before = G(z).detach()
    theta = store.take_theta()
    with torch.no_grad():
        G.weight.mul_(2.0)  # the optimizer's step
    live = G(z).detach()
    assert torch.equal(store.generate(theta, z), before)
    assert torch.equal(store.generate(store.after, z), live)  # θ' is the live G in one process
    assert torch.equal(G(z).detach(), live) and store.shadow_g is not G
    assert store.take_theta_next() is None
