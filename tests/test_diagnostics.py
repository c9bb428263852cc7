from __future__ import annotations

import torch
from torch import nn

from ganrobust import Scorer, diagnose_scorer
from ganrobust.diagnostics import DOCS, Diagnostic


def _codes(scorer: Scorer, x: torch.Tensor) -> set[str]:
    return {d.code for d in diagnose_scorer(scorer, x)}


def test_every_code_has_a_doc_entry() -> None:
    for code, doc in DOCS.items():
        assert doc.raised_if and doc.explanation, code
        assert Diagnostic.make(code, "m").to_dict()["raised_if"] == doc.raised_if


def test_stochastic_discriminator_is_detected(noisy_d) -> None:
    assert "stochastic-discriminator" in _codes(Scorer(noisy_d), torch.rand(64, 4))


def test_zero_gradient_and_sigmoid_outputs_are_detected() -> None:
    dead = nn.Sequential(nn.Linear(4, 1), nn.ReLU(), nn.Flatten(0))
    with torch.no_grad():
        dead[0].bias.fill_(-100.0)
    assert "zero-gradient" in _codes(Scorer(dead), torch.rand(8, 4))
    squashed = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid(), nn.Flatten(0))
    assert "sigmoid-output" in _codes(Scorer(squashed, tau=0.5), torch.rand(8, 4))
    assert "sigmoid-output" not in _codes(Scorer(squashed, kind="prob"), torch.rand(8, 4))


def test_a_healthy_discriminator_raises_nothing(dcgan_d, images) -> None:
    assert _codes(Scorer(dcgan_d), images[:16]) == set()
