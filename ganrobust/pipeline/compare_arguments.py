"""``compare``: Odena's three arguments at a run's persisted snapshot, exactly as ``audit RUN
--snapshots all`` replays them (the run's probes, its recorded update, optimizer state and training
batch, its own losses and score convention)."""

from __future__ import annotations

from ganrobust.module_copy import copy_module
import dataclasses
from typing import Any

import torch

from ganrobust.config import AuditConfig, CompareConfig
from ganrobust.gan_call import gan_call_from_record
from ganrobust.measure.audit import audit_snapshot
from ganrobust.pipeline.sweep import step_inputs
from ganrobust.runs import Run
from ganrobust.runs.checkpoints import LoadedGAN
from ganrobust.runs.settings import configured, resolve_settings, score_spec_for
from ganrobust.runs.store import load_snapshot

#: the arguments' settings in a comparison: the audit's, on the run's own probes, with a shorter
#: robustness curve (compare measures D's robustness itself) and fewer minimum-norm probes
COMPARE_AUDIT = AuditConfig(min_norm_probes=16, pgd_iterations=30)


def point_arguments(run: Run, loaded: LoadedGAN, step: int, cfg: CompareConfig, device: str,
                    real: torch.Tensor | None = None) -> dict[str, Any]:
    """The ``odena`` section of persisted step ``step`` (see :func:`ganrobust.measure.arguments.snapshot_arguments`)."""
    dev = torch.device(device)
    settings = resolve_settings(loaded)
    acfg = configured(dataclasses.replace(COMPARE_AUDIT, seed=cfg.seed, eps=cfg.eps, eps_grid=(cfg.eps,)), settings,
                      loaded.train_config)
    call = gan_call_from_record(run.manifest.get("gan_call"))
    spec = score_spec_for(loaded, settings, call)
    if cfg.bn is not None:
        spec = dataclasses.replace(spec, bn=cfg.bn)
    Z = run.probes().to(dev)
    C = run.probe_conditions()
    C = None if C is None or not call.conditional else C.to(dev)
    modules = {kind: copy_module(loaded.G if kind.startswith("G") else loaded.D).to(dev)
               for kind in ("G_before", "G_after", "D")}
    for kind, module in modules.items():
        module.load_state_dict(load_snapshot(run.dir, step, kind, verify=cfg.verify))
    measured = audit_snapshot(modules["G_before"], modules["G_after"], modules["D"], scorer_options=spec, Z=Z,
                              cfg=acfg, real=real, C=C, call=call, inputs=step_inputs(run.dir, step, acfg, cfg.verify))
    return measured["odena"]
