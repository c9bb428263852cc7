"""Audit the persisted snapshots of a watched run, resumably.

Each persisted step (``snapshots/d_*.safetensors`` with G before/after) is audited with the
run's own probe latents; its result is written to ``<out>/snapshots/step_*.json`` as soon as it
is done, and a rerun skips steps already written: an interrupted audit resumes where it stopped.
Under ``torchrun`` the steps are sharded over ranks (:func:`audit_sharded`), each rank writing
the steps it finished, so a sharded sweep resumes the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ganrobust.config import AuditConfig, ScoreSpec
from ganrobust.distributed import Context, item_seed
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.measure.audit import audit_snapshot
from ganrobust.module_copy import copy_module
from ganrobust.module_state import preserved_rng
from ganrobust.runs import read_run
from ganrobust.runs.checkpoints import LoadedGAN
from ganrobust.runs.step_inputs import load_optimizer_state, load_training_batch
from ganrobust.runs.store import SnapshotResults, load_snapshot, persisted_steps
from ganrobust.errors import InputError, param


def parse_selection(text: str | None, available: list[int]) -> list[int]:
    """``all`` (or None), ``last``, or a comma list of steps."""
    if text in (None, "all"):
        return available
    if text == "last":
        return available[-1:]
    try:
        wanted = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"expected {param('snapshot_selection')} all, last or a comma list of steps, got {text!r}") from None
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise InputError(f"no persisted snapshot for step(s) {missing}; available: {available[:10]}")
    return wanted


def step_inputs(run_dir: Path, step: int, cfg: AuditConfig, verify: bool = True) -> dict[str, Any]:
    """What the run kept of ``step`` for replaying Odena's arguments (None where it kept nothing) and
    the step's own seed: every random draw of the arguments is keyed by the step, not by the rank."""
    return {"optimizer": load_optimizer_state(run_dir, step, verify=verify), "batch": load_training_batch(run_dir, step, verify=verify),
            "seed": item_seed(cfg.seed, step)}


def audit_run_snapshots(run_dir: Path, loaded: LoadedGAN, out: Path, *, selection: str | None, cfg: AuditConfig,
                        scorer_options: ScoreSpec, tick: Callable[[int], None] | None = None,
                        verify: bool = True, real: torch.Tensor | None = None,
                        call: GanCall = DEFAULT) -> list[dict[str, Any]]:
    """Audit the selected persisted steps; each snapshot file is checked against the SHA-256 the
    run recorded (CheckpointError on a mismatch) unless ``verify`` is False."""
    _, snapshots = audit_sharded(None, run_dir, loaded, out, selection=selection, cfg=cfg,
                                 scorer_options=scorer_options, tick=tick, verify=verify, real=real, call=call)
    return snapshots or []


def audit_sharded(main: Callable[[], Any] | None, run_dir: Path | None, loaded: LoadedGAN, out: Path, *,
                  selection: str | None, cfg: AuditConfig, scorer_options: ScoreSpec,
                  tick: Callable[[int], None] | None = None, verify: bool = True, real: torch.Tensor | None = None,
                  ctx: Context | None = None, call: GanCall = DEFAULT) -> tuple[Any, list[dict[str, Any]] | None]:
    """The whole audit of a run as one list of items sharded over ranks (item ``i`` on rank
    ``i mod world``): ``main()`` (the checkpoint's audit, when given) is item 0, the selected
    persisted steps follow. Returns ``(main's result, the snapshot results)`` on rank 0 and
    ``(None, None)`` on the other ranks; one process (``ctx`` None) is a world of one.

    Probes are never split: each snapshot is audited on the whole probe batch by one rank, so
    its numbers are those of the single-process audit bit for bit (batch statistics, batched
    attacks and every interval see the same batch), and its random draws are keyed by the step.
    Each rank writes the steps it finished to ``<out>/snapshots/`` at once: a killed sweep,
    sharded or not, resumes from them."""
    ctx = ctx or Context()
    steps: list[int] = []
    Z = C = None
    if selection is not None and run_dir is not None:
        steps = parse_selection(selection, persisted_steps(run_dir))
        run = read_run(run_dir)
        Z = run.probes()[: cfg.n_probes]
        C = run.probe_conditions()  # conditional GANs: the probes' conditions travel with them
        C = None if C is None else C[: cfg.n_probes]
        if call.conditional and C is None:
            raise InputError(f"{run_dir} stored no probe conditions, but the GAN is audited as conditional; "
                             f"drop {param('num_classes')}")
    done = SnapshotResults(out)
    items: list[Any] = (["checkpoint"] if main is not None else []) + steps

    def work(_index: int, item: Any) -> Any:
        if item == "checkpoint":
            assert main is not None
            return main()
        assert run_dir is not None and Z is not None
        result = done.get(item)  # resume: done in an earlier, interrupted audit
        if result is not None and "odena" not in result:  # written before the arguments were swept
            result = None
        if result is None:
            D, Gb, Ga = copy_module(loaded.D), copy_module(loaded.G), copy_module(loaded.G)
            for module, kind in ((D, "D"), (Gb, "G_before"), (Ga, "G_after")):
                module.load_state_dict(load_snapshot(run_dir, item, kind, verify=verify))
            inputs = step_inputs(run_dir, item, cfg, verify)
            with preserved_rng(next(iter(loaded.G.parameters())).device):  # a draw from the global RNG (a G with noise layers) is keyed by the step
                torch.manual_seed(item_seed(cfg.seed, item))
                measured = audit_snapshot(Gb, Ga, D, scorer_options=scorer_options, Z=Z, cfg=cfg, real=real,
                                          C=C if call.conditional else None, call=call, inputs=inputs)
            result = done.put(item, {"step": item, **measured})
        if tick:
            tick(item)
        return result

    results = ctx.map(items, work)
    if results is None:
        return None, None
    head = results[0] if main is not None else None
    return head, (results[1:] if main is not None else results) if selection is not None else None
