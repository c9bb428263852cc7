"""torch.distributed: real 2-process gloo groups on the CPU. The hook under DDP (training
bit-identical on every rank, rank 0 alone writes, the sharded probes equal the whole batch),
sharded audits equal to the single-process one, and a rank that fails."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.config import WatchConfig
from ganrobust.distributed import Context, RankFailed, backend_for, item_seed, merge_rows
from ganrobust.runs import read_run

# every test below starts two Python processes that import torch (about 3 s each on this 2-core
# host before any work). The four the issue names — DDP watch, FSDP2 watch, a raising rank, a
# sharded audit equal to one process — run by default (about 40 s together) so that CI holds
# them; the other fault and resume cases are marked slow.
SLOW = pytest.mark.slow
WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "GIT_PYTHON_REFRESH": "quiet", **extra}


def _ranks(mode: str, out: Path, world: int = 2, timeout: float = 60, **env: str) -> list[dict]:
    """Start ``world`` worker processes as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT) but
    without its agent, which would kill the others when one exits: what a rank does on its own
    when another fails is what is tested."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(WORKER), mode, str(out)], cwd=ROOT,
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world),
                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port, **env))
             for r in range(world)]
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [json.loads(p.read_text()) if (p := out / f"rank{r}.json").exists() else {} for r in range(world)]


def test_sharding_is_by_item_index_and_seeds_do_not_depend_on_rank() -> None:
    items = list("abcdefg")
    shards = [Context(rank=r, world=3).shard(items) for r in range(3)]
    assert [[i for i, _ in s] for s in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(i for s in shards for i, _ in s) == list(range(7))
    assert item_seed(0, 5) == item_seed(0, 5) != item_seed(0, 6) != item_seed(1, 5)
    assert backend_for("cpu") == "gloo" and backend_for("cuda:1") == "nccl" and backend_for(None) == "gloo"
    rows = [(np.arange(r, 5, 2), {"s": np.arange(r, 5, 2) * 10.0}) for r in range(2)]
    assert merge_rows(rows, 5)["s"].tolist() == [0, 10, 20, 30, 40]
    with pytest.raises(ValueError, match="measured by no rank"):
        merge_rows(rows[:1], 5)
    with pytest.raises(RankFailed, match="rank 0 failed"):
        Context().gather(1, error="boom")


def test_ddp_watch_shards_probes_rank0_writes_and_training_is_bit_identical(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    results = _ranks("ddp_watch", out)
    assert all(r.get("identical") for r in results), results  # every rank trains exactly as without the hook
    assert all(r.get("rng_identical") for r in results), results
    assert [r["writes"] for r in results] == [True, False] and all(r["errors"] == 0 for r in results)
    assert all(r["backend"] == "gloo" for r in results)
    run = read_run(out / "run")
    assert run.complete and [s.step for s in run.steps] == [2, 4, 6]
    assert run.manifest["distributed"]["world"] == 2
    _equals_whole_batch(out / "run", train_n=16)
    assert not (tmp_path / "run").exists()


def _equals_whole_batch(run_dir: Path, train_n: int) -> None:
    """Each step's merged rows equal the whole probe batch measured in one process against the
    persisted snapshots, noise draws and minimum-norm subset included (keyed by the probe's row)."""
    import importlib.util

    from ganrobust.attacks.minimum_norm import MinimumNormAttack
    from ganrobust.measure.update import measure_update
    from ganrobust.runs.store import load_state
    from ganrobust.scorer import Scorer

    spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    cfg = worker.CFG
    G, D = worker._pair()
    run = read_run(run_dir)
    Z = run.probes()
    finite_eps_star = 0
    for k, step in enumerate(run.steps):
        names = step.raw["snapshots"]
        D.load_state_dict(load_state(run_dir / names["D"]))
        G.load_state_dict(load_state(run_dir / names["G_before"]))
        x = G(Z).detach()
        G.load_state_dict(load_state(run_dir / names["G_after"]))
        x_next = G(Z).detach()
        whole = measure_update(Scorer(D, bounds=cfg.bounds, tau=cfg.tau), x, x_next, eps=cfg.eps,
                               efficiency_steps=cfg.efficiency_steps, noise_draws=cfg.noise_draws,
                               seed=cfg.seed + step.step, min_norm_probes=cfg.min_norm_probes,
                               min_norm=MinimumNormAttack(norm=cfg.min_norm_norm, bisection_steps=5) if k % 2 == 0 else None)
        sharded = run.samples(step.step)
        assert 0 < sharded["fake"].sum() < len(Z)  # both kinds of probe: nothing below is vacuous
        finite_eps_star += int(np.isfinite(sharded["eps_star"]).sum())
        for key in ("s", "s_next", "flip", "accidental", "noise_flip", "eps_star", "efficiency"):
            # efficiency (s_next - s) / (s_pgd - s) divides differences of close scores, and its PGD search
            # runs on 6 rows here and 12 there (BLAS rounds a row differently): a looser, stated tolerance
            rtol = 1e-3 if key == "efficiency" else 1e-5
            np.testing.assert_allclose(sharded[key].astype(float), whole.samples[key].astype(float), rtol=rtol,
                                       atol=1e-6, equal_nan=True, err_msg=f"step {step.step} {key}")
        assert step.raw["train"]["n"] == train_n
    assert finite_eps_star > 0  # the minimum-norm subset was attacked on the sharded rows


def test_fsdp2_watch_full_snapshots_on_every_rank(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    results = _ranks("fsdp_watch", out)
    assert all(r.get("identical") for r in results), results
    assert [r["writes"] for r in results] == [True, False] and all(r["errors"] == 0 for r in results)
    run = read_run(out / "run")
    assert run.complete and [s.step for s in run.steps] == [2, 4, 6]
    assert run.manifest["distributed"]["fsdp"] and run.manifest["distributed"]["probes"] == "whole batch on rank 0"
    _equals_whole_batch(out / "run", train_n=8)  # rank 0's own training batch: the only full state


def test_a_raising_rank_makes_every_rank_fail_at_once(tmp_path) -> None:
    results = _ranks("raising_rank", tmp_path)
    for r in results:
        assert r["raised"] and "rank 1 failed: item 3" in r["raised"] and "a broken snapshot" in r["raised"], r
        assert r["seconds"] < 10


@SLOW
def test_a_dead_rank_makes_the_others_fail_within_the_timeout(tmp_path) -> None:
    results = _ranks("dying_rank", tmp_path, GANROBUST_DIST_TIMEOUT="8")
    assert results[1] == {}  # it died
    assert results[0]["raised"] and results[0]["seconds"] < 8 + 5, results[0]


@SLOW
def test_a_hanging_rank_makes_the_others_fail_after_the_timeout(tmp_path) -> None:
    results = _ranks("hanging_rank", tmp_path, timeout=60, GANROBUST_DIST_TIMEOUT="3")
    assert results[0]["raised"] and 2.5 < results[0]["seconds"] < 3 + 6, results[0]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    from ganrobust.config import TrainConfig
    from ganrobust.train import train

    run = tmp_path_factory.mktemp("dist") / "run"
    train(TrainConfig(arch="mlp", data="8gaussians", steps=30, batch=32, nz=4, ngf=16, ndf=16, n_data=256),
          run_dir=run, watch_config=WatchConfig(every=10, n_probes=16, snapshot_every=10))
    return run


AUDIT = ["--snapshots", "all", "--n-probes", "16", "--k-steps", "3"]  # k > 1: the arguments replay at every snapshot


def _report(path: Path) -> dict:
    report = json.loads((path / "report.json").read_text())
    for key in ("seconds", "command", "versions"):  # wall clock, argv, host and thread count: nothing measured
        report.pop(key)
    return report


def test_sharded_audit_under_torchrun_equals_the_single_process_report(ring_run, tmp_path) -> None:
    one = CliRunner().invoke(cli, ["audit", str(ring_run), *AUDIT, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "ganrobust.cli", "audit", str(ring_run), *AUDIT, "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone reports and writes; rank 1 only computed its items
    assert done.stderr.count("note: audit settings") == 1 and done.stderr.count("wrote ") == 1, done.stderr[-3000:]
    assert _report(tmp_path / "one") == _report(tmp_path / "two")
    assert (tmp_path / "one" / "samples.npz").read_bytes() == (tmp_path / "two" / "samples.npz").read_bytes()
    assert sorted(p.name for p in (tmp_path / "two" / "snapshots").iterdir()) == [
        "step_0000010.json", "step_0000020.json", "step_0000030.json"]


@SLOW
def test_a_killed_sharded_sweep_resumes(ring_run, tmp_path) -> None:
    """A sweep stopped midway (here: only step 20 finished) resumes with the others, whichever
    rank finished what, to the report of an uninterrupted single-process audit."""
    one = CliRunner().invoke(cli, ["audit", str(ring_run), *AUDIT, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    partial = tmp_path / "two" / "snapshots"
    partial.mkdir(parents=True)
    finished = json.loads((tmp_path / "one" / "snapshots" / "step_0000020.json").read_text())
    (partial / "step_0000020.json").write_text(json.dumps({**finished, "resumed": True}))
    (partial / "step_0000030.tmp").write_text("{")  # a write cut off by the kill
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "ganrobust.cli", "audit", str(ring_run), *AUDIT, "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    two = _report(tmp_path / "two")
    assert two["snapshots"][1].pop("resumed") is True  # read back, not computed again
    assert _report(tmp_path / "one") == two


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "ganrobust.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)


@SLOW
def test_sharded_compare_equals_the_single_process_one(ring_run, tmp_path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(ring_run, other)
    options = ["--quality-samples", "200", "--robustness-samples", "16"]
    one = CliRunner().invoke(cli, ["compare", str(ring_run), str(other), *options, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    done = _torchrun("compare", str(ring_run), str(other), *options, "--out", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("wrote ") == 1, done.stderr[-3000:]  # rank 0 alone writes
    a, b = _report(tmp_path / "one"), _report(tmp_path / "two")
    assert len(a["runs"][0]["points"]) == 3 and a == b  # steps 10, 20, 30 (the last is the checkpoint step)


@SLOW
def test_a_rank_failing_in_the_cli_stops_every_rank_with_one_line(ring_run, tmp_path) -> None:
    """Step 20 is item 2 (rank 0 audits the checkpoint and step 20, rank 1 steps 10 and 30):
    a corrupted step-30 snapshot fails on rank 1; both ranks exit with the error, none hangs."""
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(ring_run, broken)
    path = broken / "snapshots" / "d_0000030.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    done = _torchrun("audit", str(broken), *AUDIT, "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    # both ranks print the one line (torchrun interleaves their stderr, progress bars included)
    errors = re.findall(r"error: rank 1 failed: item 3 \(30\): IntegrityError: [^\r\n]*rerun to resume", done.stderr)
    assert len(errors) == 2, done.stderr[-3000:]
    assert not (tmp_path / "out" / "report.json").exists()
    assert (tmp_path / "out" / "snapshots" / "step_0000010.json").exists()  # finished work is kept
