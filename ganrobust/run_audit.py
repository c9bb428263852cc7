"""Audit the persisted snapshots of a watched run, resumably.

Each persisted step (``snapshots/d_*.safetensors`` with G before/after) is audited with the
run's own probe latents; its result is written to ``<out>/snapshots/step_*.json`` as soon as it
is done, and a rerun skips steps already written: an interrupted audit resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import torch

from ganrobust.audit import AuditConfig, audit_snapshot
from ganrobust.checkpoints import LoadedGAN, verify_run_file
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.runs import read_run, snapshot_file, to_jsonable
from ganrobust.snapshots import load_state, persisted_steps


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
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    results = []
    for step in steps:
        path = out / "snapshots" / f"step_{step:07d}.json"
        if path.exists():  # resume: done in an earlier, interrupted audit
            results.append(json.loads(path.read_text()))
        else:
            D, Gb, Ga = copy.deepcopy(loaded.D), copy.deepcopy(loaded.G), copy.deepcopy(loaded.G)
            for module, kind in ((D, "D"), (Gb, "G_before"), (Ga, "G_after")):
                relpath = snapshot_file(step, kind)
                verify_run_file(run_dir, relpath, verify)
                module.load_state_dict(load_state(run_dir / relpath))
            result = {"step": step, **audit_snapshot(Gb, Ga, D, scorer_options=scorer_options, Z=Z, cfg=cfg, real=real,
                                                        C=C if call.conditional else None, call=call)}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(to_jsonable(result)))
            tmp.replace(path)
            results.append(json.loads(path.read_text()))
        if tick:
            tick(step)
    return results
