"""precision="auto" is chosen by a cached timing of the model being attacked, not by CPU flags
(issue 22). Which precision is faster is measured in benchmarks/attacks.py, never asserted here:
these tests hold the choice to the timing, and the timing to its cache."""

from __future__ import annotations

import json

import pytest
import torch

from ganrobust import Scorer
from ganrobust.attacks import precision as P
from ganrobust.attacks.precision import Precision, choose_from_timing, measured_precision, resolve_precision


@pytest.mark.parametrize("seconds, expected", [
    ({"fp32": 1.0, "bf16": 0.5}, Precision.BF16),
    ({"fp32": 1.0, "bf16": 0.85}, Precision.BF16),        # exactly at the margin
    ({"fp32": 1.0, "bf16": 0.86}, Precision.FP32),        # faster, but not by the margin
    ({"fp32": 1.0, "bf16": 1.3}, Precision.FP32),
    ({"fp32": 1.0, "bf16": 0.6, "fp16": 0.4}, Precision.FP16),
    ({"fp32": 1.0, "bf16": 0.6, "fp16": 0.9}, Precision.BF16),
])
def test_the_choice_is_the_fastest_precision_beyond_the_margin(seconds, expected) -> None:
    assert P.SPEEDUP_MARGIN == 0.85
    assert choose_from_timing(seconds) is expected


def _scorer_and_x(linear_d, central_x):
    return Scorer(linear_d), central_x


def test_auto_is_deterministic_given_the_cached_timing(tmp_path, monkeypatch, linear_d, central_x) -> None:
    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path))
    scorer, x = _scorer_and_x(linear_d, central_x)
    key = P.timing_key(scorer, x)

    def no_timing(*_a, **_k):
        raise AssertionError("a cached timing must not be measured again")

    monkeypatch.setattr(P, "time_precisions", no_timing)
    for bf16, expected in ((0.4, Precision.BF16), (0.95, Precision.FP32)):
        (tmp_path / "precision.json").write_text(json.dumps({key: {"seconds": {"fp32": 1.0, "bf16": bf16}}}))
        for _ in range(3):
            assert resolve_precision("auto", x.device, scorer=scorer, x=x) is expected
        choice, record = measured_precision(scorer, x)
        assert choice is expected and record["chosen"] == expected.value and record["seconds"]["bf16"] == bf16


def test_a_missing_timing_is_measured_once_and_cached(tmp_path, monkeypatch, linear_d, central_x) -> None:
    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path / "cache"))
    scorer, x = _scorer_and_x(linear_d, central_x)
    calls = []
    real = P.time_precisions
    monkeypatch.setattr(P, "time_precisions", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = torch.get_rng_state()
    first = resolve_precision("auto", x.device, scorer=scorer, x=x)
    assert torch.equal(rng, torch.get_rng_state())  # timing draws nothing from the global RNG
    second = resolve_precision("auto", x.device, scorer=scorer, x=x)
    assert len(calls) == 1 and first is second
    cached = json.loads((tmp_path / "cache" / "precision.json").read_text())
    entry = cached[P.timing_key(scorer, x)]
    assert set(entry["seconds"]) == {"fp32", "bf16"} and all(t > 0 for t in entry["seconds"].values())
    assert choose_from_timing(entry["seconds"]) is first
    # another batch shape is another model shape: timed on its own
    resolve_precision("auto", x.device, scorer=scorer, x=x[:5])
    assert len(calls) == 2


def test_without_a_model_auto_is_float32_and_explicit_requests_are_kept(linear_d, central_x) -> None:
    assert resolve_precision("auto") is Precision.FP32
    assert resolve_precision("bf16", scorer=Scorer(linear_d), x=central_x) is Precision.BF16


def test_the_record_carries_the_timing_that_chose(tmp_path, monkeypatch, linear_d, central_x) -> None:
    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path))
    scorer, x = _scorer_and_x(linear_d, central_x)
    (tmp_path / "precision.json").write_text(json.dumps({P.timing_key(scorer, x): {"seconds": {"fp32": 2.0, "bf16": 1.0}}}))
    record = P.precision_record("auto", x.device, scorer=scorer, x=x)
    assert record["used"] == "bf16" and record["timing"]["seconds"] == {"fp32": 2.0, "bf16": 1.0}
    assert record["timing"]["margin"] == P.SPEEDUP_MARGIN
    assert P.precision_record("fp32")["used"] == "fp32" and "timing" not in P.precision_record("fp32")


def test_a_watched_run_records_the_timing_that_chose_auto(tmp_path, monkeypatch) -> None:
    from ganrobust.config import TrainConfig, WatchConfig
    from ganrobust.runs import read_run
    from ganrobust.train import train

    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path / "cache"))
    cfg = TrainConfig(steps=2, batch=8, nz=8, ngf=4, ndf=4, n_data=64)
    train(cfg, run_dir=tmp_path / "run", watch_config=WatchConfig(every=2, n_probes=8, min_norm_probes=2,
                                                                  efficiency_steps=1, precision="auto"))
    recorded = read_run(tmp_path / "run").manifest["precision"]
    assert recorded["requested"] == "auto" and recorded["timing"] is not None
    assert recorded["used"] == recorded["timing"]["chosen"] == choose_from_timing(recorded["timing"]["seconds"]).value
