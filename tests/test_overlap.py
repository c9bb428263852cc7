"""watch(..., overlap=True): the measurement thread writes the records the synchronous hook
writes, and training stays bit-identical (issue 22). Speed is measured in benchmarks/watch.py."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from ganrobust.config import TrainConfig, WatchConfig
from ganrobust.train import train

# every measured step a min-norm attack, snapshots persisted twice, the training batch measured
CFG = TrainConfig(steps=6, batch=16, nz=16, ngf=8, ndf=8, n_data=256)
WATCH = WatchConfig(every=2, n_probes=16, snapshot_every=4, min_norm_every=1, min_norm_probes=4, efficiency_steps=2)


def _records(run_dir) -> list[dict]:
    out = []
    for line in (run_dir / "steps.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("seconds", None)  # wall time of the measurement: the one field that may differ
        out.append(record)
    return out


def _tensors(run_dir, sub: str) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: load_file(p) for p in sorted((run_dir / sub).glob("*.safetensors"))}


def test_overlap_writes_the_records_of_the_synchronous_hook_and_training_is_bit_identical(tmp_path) -> None:
    plain = train(CFG)
    rng_plain = torch.get_rng_state()
    sync = train(CFG, run_dir=tmp_path / "sync", watch_config=WATCH)
    overlap = train(CFG, run_dir=tmp_path / "overlap", watch_config=WATCH.replace(overlap=True))
    rng_overlap = torch.get_rng_state()
    for a, b in ((plain, sync), (plain, overlap)):
        for ma, mb in ((a.G, b.G), (a.D, b.D)):
            sa, sb = ma.state_dict(), mb.state_dict()
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert a.history == b.history
    assert torch.equal(rng_plain, rng_overlap)

    records = _records(tmp_path / "sync")
    kinds = [r["kind"] for r in records]
    assert kinds.count("step") == CFG.steps // WATCH.every and "persists" in kinds and "error" not in kinds
    assert records == _records(tmp_path / "overlap")
    for sub in ("samples", "snapshots"):
        a, b = _tensors(tmp_path / "sync", sub), _tensors(tmp_path / "overlap", sub)
        assert a.keys() == b.keys() and a
        for name in a:
            assert a[name].keys() == b[name].keys()
            # bit for bit, NaN (eps_star of probes not attacked) included
            assert all(a[name][k].numpy().tobytes() == b[name][k].numpy().tobytes() for k in a[name]), (sub, name)
