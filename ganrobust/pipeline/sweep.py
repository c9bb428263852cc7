"""Audit the persisted snapshots of a watched run, resumably.

Each persisted step (``snapshots/d_*.safetensors`` with G before/after) is audited with the
run's own probe latents; its result is written to ``<out>/snapshots/step_*.json`` as soon as it
is done, and a rerun skips steps already written: an interrupted audit resumes where it stopped.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import torch

from ganrobust.config import AuditConfig
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.measure.audit import audit_snapshot
from ganrobust.runs import read_run
from ganrobust.runs.checkpoints import LoadedGAN
from ganrobust.runs.store import SnapshotResults, load_snapshot, persisted_steps


def parse_selection(text: str | None, available: list[int]) -> list[int]:
    """``all`` (or None), ``last``, or a comma list of steps."""
    if text in (None, "all"):
        return available
    if text == "last":
        return available[-1:]
    try:
        wanted = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"expected --snapshots all, last or a comma list of steps, got {text!r}") from None
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"no persisted snapshot for step(s) {missing}; available: {available[:10]}")
    return wanted


def audit_run_snapshots(run_dir: Path, loaded: LoadedGAN, out: Path, *, selection: str | None, cfg: AuditConfig,
                        scorer_options: dict[str, Any], tick: Callable[[int], None] | None = None,
                        verify: bool = True, real: torch.Tensor | None = None,
                        call: GanCall = DEFAULT) -> list[dict[str, Any]]:
    """Audit the selected persisted steps; each snapshot file is checked against the SHA-256 the
    run recorded (CheckpointError on a mismatch) unless ``verify`` is False."""
    run = read_run(run_dir)
    steps = parse_selection(selection, persisted_steps(run_dir))
    Z = run.probes()[: cfg.n_probes]
    C = run.probe_conditions()
    C = None if C is None else C[: cfg.n_probes]
    if call.conditional and C is None:
        raise ValueError(f"{run_dir} stored no probe conditions, but the GAN is audited as conditional; drop --num-classes")
    done = SnapshotResults(out)
    results = []
    for step in steps:
        result = done.get(step)  # resume: done in an earlier, interrupted audit
        if result is None:
            D, Gb, Ga = copy.deepcopy(loaded.D), copy.deepcopy(loaded.G), copy.deepcopy(loaded.G)
            for module, kind in ((D, "D"), (Gb, "G_before"), (Ga, "G_after")):
                module.load_state_dict(load_snapshot(run_dir, step, kind, verify=verify))
            result = done.put(step, {"step": step, **audit_snapshot(Gb, Ga, D, scorer_options=scorer_options, Z=Z,
                                                                    cfg=cfg, real=real,
                                                                    C=C if call.conditional else None, call=call)})
        results.append(result)
        if tick:
            tick(step)
    return results
