"""The hook's observer alone: optimizer steps and forwards in, typed G-step events out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganrobust.capture import MAIN, REGULARISATION
from ganrobust.errors import InputError
from ganrobust.gan_call import DEFAULT
from ganrobust.watching.observer import GStepEnded, GStepStarts, LoopObserver


def _pair():
    torch.manual_seed(0)
    G, D = nn.Linear(4, 2), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    return G, D, torch.optim.SGD(G.parameters(), 0.1), torch.optim.SGD(D.parameters(), 0.1)


def _d_step(G, D, opt_d) -> None:
    opt_d.zero_grad()
    D(G(torch.randn(8, 4)).detach()).mean().backward()
    opt_d.step()


def _g_step(G, D, opt_g, *, through_d: bool = True) -> None:
    opt_g.zero_grad()
    out = G(torch.randn(8, 4))
    (-D(out).mean() if through_d else out.pow(2).mean()).backward()
    opt_g.step()


def _observed(listening=lambda: True):
    G, D, opt_g, opt_d = _pair()
    events: list[object] = []
    observer = LoopObserver(G, D, DEFAULT, on_start=events.append, on_end=events.append, listening=listening)
    observer.start()
    return observer, events, (G, D, opt_g, opt_d)


def test_a_g_optimizer_step_is_a_typed_event_with_its_number_phase_and_d_updates() -> None:
    observer, events, (G, D, opt_g, opt_d) = _observed()
    try:
        _d_step(G, D, opt_d)
        _d_step(G, D, opt_d)
        _g_step(G, D, opt_g)                   # its loss went through D: Gmain
        _g_step(G, D, opt_g, through_d=False)  # a regulariser step: Greg, no D update since
    finally:
        observer.stop()
    assert [type(e) for e in events] == [GStepStarts, GStepEnded, GStepStarts, GStepEnded]
    first, second = events[0], events[2]
    assert (first.step, first.phase, first.d_steps, first.optimizer) == (1, MAIN, 2, opt_g)
    assert (second.step, second.phase, second.d_steps) == (2, REGULARISATION, 0)
    assert [e.step for e in events if isinstance(e, GStepEnded)] == [1, 2]
    assert observer.optimizer("G") is opt_g and observer.optimizer("D") is opt_d


def test_other_optimizers_fire_nothing_and_a_stopped_observer_hears_nothing() -> None:
    observer, events, (G, D, opt_g, opt_d) = _observed()
    other = nn.Linear(3, 3)
    opt_other = torch.optim.SGD(other.parameters(), 0.1)
    try:
        other(torch.randn(2, 3)).sum().backward()
        opt_other.step()
        assert events == [] and observer.kind(opt_other) is None
    finally:
        observer.stop()
    _g_step(G, D, opt_g)
    assert events == [] and observer.g_step == 0


def test_while_not_listening_g_steps_are_neither_counted_nor_fired() -> None:
    listening = [False]
    observer, events, (G, D, opt_g, opt_d) = _observed(lambda: listening[0])
    try:
        _g_step(G, D, opt_g)
        listening[0] = True
        _g_step(G, D, opt_g)
    finally:
        observer.stop()
    assert [e.step for e in events] == [1, 1]


def test_shared_parameters_are_refused() -> None:
    G = nn.Linear(2, 2)
    with pytest.raises(InputError, match="share parameters"):
        LoopObserver(G, nn.Sequential(G), DEFAULT, on_start=print, on_end=print)
