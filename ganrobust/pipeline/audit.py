"""``ganrobust audit``: load a checkpoint (or a run directory) through the run store, resolve how it
is scored and replayed from what it recorded, audit it (and its persisted snapshots), and return
the report built by :mod:`ganrobust.report.envelope`. The CLI parses, calls this, writes, prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ganrobust.config import AuditConfig
from ganrobust.data import load_dataset
from ganrobust.distributed import Context
from ganrobust.measure.audit import audit_gan
from ganrobust.pipeline.sweep import audit_sharded, parse_selection
from ganrobust.report.envelope import audit_report
from ganrobust.runs import CHECKPOINT, read_run
from ganrobust.runs.checkpoints import LoadedGAN, load_gan
from ganrobust.runs.settings import configured, describe, resolve_settings, scorer_options_for
from ganrobust.runs.store import is_run, persisted_steps

Note = Callable[[str], None]


@dataclass
class Audited:
    """An audit's report and the arrays written beside it (``samples.npz``)."""

    report: dict[str, Any]
    samples: dict[str, np.ndarray]
    images: dict[str, torch.Tensor]


def default_out(checkpoint: Path | None, generator: Path | None) -> Path:
    """``reports/<run directory name>`` for a run or its checkpoint.pt, else ``reports/<file stem>``."""
    name = (checkpoint or generator or Path("audit")).resolve()
    return Path("reports") / (name.parent.name if name.name == CHECKPOINT else name.stem)


def snapshot_count(run_dir: Path, selection: str) -> int:
    """How many persisted snapshots ``selection`` names (for a progress bar)."""
    return len(parse_selection(selection, persisted_steps(run_dir)))


def audit_checkpoint(checkpoint: Path | None, *, cfg: AuditConfig, load: dict[str, Any], bn: str | None = None,
                     d_output: str | None = None, g_loss: str | None = None, g_optimizer: str | None = None,
                     fresh_optimizer: bool = False, data: str | None = None, snapshot_selection: str | None = None,
                     robust_d: int = 0, device: str = "cpu", verify: bool = True, out: Path,
                     command: str, started: float, generator: Path | None = None,
                     note: Note = lambda _m: None, progress: Callable[[str], None] | None = None,
                     snapshot_tick: Callable[[int], None] | None = None, ctx: Context | None = None) -> Audited | None:
    """Audit ``checkpoint`` (a file or a run directory; ``load`` holds the other arguments of
    :func:`ganrobust.runs.checkpoints.load_gan`). ValueError (CheckpointError) with the fix for
    anything that cannot be audited; ``note`` receives one line per thing the user should know.

    ``ctx`` (under ``torchrun``): the checkpoint's audit and the persisted snapshots are one list
    of items sharded over the ranks (:func:`ganrobust.pipeline.sweep.audit_sharded`); rank 0 gets
    the report, equal to the single-process one, and the other ranks None."""
    ctx = ctx or Context()
    real = None if data is None else load_dataset(data, n=max(cfg.n_probes, 1000), seed=cfg.seed).x
    loaded = load_gan(checkpoint, generator=generator, d_output=d_output, verify=verify, **load)
    settings = resolve_settings(loaded, bn=bn, d_output=d_output, g_loss=g_loss, g_optimizer=g_optimizer,
                                fresh_optimizer=fresh_optimizer)
    cfg = configured(cfg, settings, loaded.train_config)
    if settings["kind"].value == "critic" and real is None:
        raise ValueError(f"D is a critic (kind=critic, from the {settings['kind'].source}): its threshold is "
                         f"calibrated on real samples; pass --data")
    dev = ctx.device(device)  # a bare cuda is cuda:LOCAL_RANK, one process per GPU
    loaded.G.to(dev)
    loaded.D.to(dev)
    scorer_options = scorer_options_for(loaded, settings)
    for line in loaded.notes:
        note(line)
    if settings["kind"].source == "detected":
        note("D ends in nn.Sigmoid: scored as kind='prob' (the Sigmoid's input is the logit); pass --d-output logit "
             "to score its output as it is")
    note(f"audit settings: {describe(settings)}")

    def audit_itself() -> dict[str, Any]:
        return audit_gan(loaded.G, loaded.D, scorer_options=scorer_options, latent_shape=loaded.latent_shape,
                         opt_state=None if fresh_optimizer else loaded.optimizer_g,
                         opt_class=settings["optimizer"].value, cfg=cfg, real=real, progress=progress,
                         robust_d_steps=robust_d)

    # item 0 is the checkpoint's audit, the persisted snapshots follow; item i runs on rank i mod world
    measured, snapshots = audit_sharded(audit_itself, Path(checkpoint or ".") if snapshot_selection else None, loaded,
                                        out, selection=snapshot_selection, cfg=cfg, scorer_options=scorer_options,
                                        tick=snapshot_tick, verify=verify, real=real, ctx=ctx)
    if measured is None:  # not rank 0: rank 0 alone builds the report
        return None
    source = {"checkpoint": str(checkpoint) if checkpoint else None,
              "generator": str(generator) if generator else None,
              "discriminator": str(load.get("discriminator")) if load.get("discriminator") else None,
              "format": loaded.source, "notes": loaded.notes,
              "settings": {key: setting.to_dict() for key, setting in settings.items()},
              "replay": _replay(loaded, settings, cfg, fresh_optimizer)}
    run = read_run(checkpoint) if checkpoint is not None and is_run(checkpoint) else None
    report = audit_report(measured, source=source, config=cfg.to_dict(),
                          score={**scorer_options, "bounds": list(loaded.bounds)}, command=command, started=started,
                          title=str(checkpoint or generator), snapshots=snapshots, run=run)
    return Audited(report, measured["samples"], measured["images"])


def _replay(loaded: LoadedGAN, settings: dict[str, Any], cfg: AuditConfig, fresh_optimizer: bool) -> str:
    if loaded.optimizer_g and not fresh_optimizer:
        return "checkpoint optimizer state"
    return f"fresh {settings['optimizer'].value}(lr={cfg.g_lr}, betas={cfg.g_betas})"
