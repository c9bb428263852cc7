"""Where the hook's results go, on rank 0 alone: the run directory (through the run store,
:class:`ganrobust.runs.RunWriter`, the only code that writes one), TensorBoard scalars, and
``checkpoint.pt`` at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust import metrics
from ganrobust.config import WatchConfig
from ganrobust.conventions import BatchNormMode
from ganrobust.errors import InputError
from ganrobust.module_state import preserved_rng
from ganrobust.records import Record, StepRecord
from ganrobust.runs import RunWriter
from ganrobust.runs.step_inputs import step_input_states
from ganrobust.watching.measurer import MeasuredStep


def run_manifest(config: WatchConfig, *, precision: dict[str, Any], models: dict[str, Any], gan_call: dict[str, Any],
                 snapshot_bytes: dict[str, int], distributed: dict[str, Any] | None,
                 overlap: dict[str, Any]) -> dict[str, Any]:
    """The watched run's ``manifest.json`` as the watch starts (later facts are added as they are seen)."""
    from ganrobust import __version__

    auto = config.bn is BatchNormMode.AUTO
    return {
        "ganrobust": __version__, "torch": torch.__version__,
        "config": config.to_dict(),
        "precision": precision,
        "models": models,
        "data_range": list(config.bounds),
        "score": {"kind": config.kind.value, "tau": config.tau, "g_bn": config.g_bn.value,
                  # bn='auto': None until observed at the first measured step
                  "bn": None if auto else config.bn.value, "bn_from": "observed" if auto else "config"},
        "seeds": {"probes": config.seed, "torch_initial_seed": torch.initial_seed()},
        "gan_call": gan_call,  # every run: rebuilt by audit and compare
        "snapshot_bytes": snapshot_bytes,
        "distributed": distributed,
        "overlap": overlap,
    }


class RunSink:
    """The run directory and, with ``tensorboard``, a TensorBoard log of the registry's scalars."""

    def __init__(self, run_dir: str | Path, manifest: dict[str, Any], tensorboard: str | Path | None = None) -> None:
        self.writer = RunWriter(run_dir, manifest)
        self._tb: Any = None
        if tensorboard is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InputError("tensorboard= needs the tensorboard package: pip install tensorboard") from None
            self._tb = SummaryWriter(str(tensorboard))

    @property
    def dir(self) -> Path:
        return self.writer.dir

    @property
    def manifest(self) -> dict[str, Any]:
        return self.writer.manifest

    def write_manifest(self, **updates: Any) -> None:
        self.writer.write_manifest(**updates)

    def update_score(self, **fields: Any) -> dict[str, Any]:
        """The manifest's ``score`` with ``fields`` added (written by the caller with its other updates)."""
        return {**self.writer.manifest["score"], **fields}

    def save_probes(self, Z: torch.Tensor, C: torch.Tensor | None) -> None:
        self.writer.save_probes(Z, C)  # conditions travel with the probes

    def save_arrays(self, measured: MeasuredStep) -> StepRecord:
        """Write the step's per-sample arrays; the record, naming them."""
        record = measured.record
        for kind, arrays in measured.arrays.items():
            record.samples[kind] = self.writer.save_samples(record.step, kind, arrays)
        return record

    def persist(self, step: int, d: tuple[list[str], list[torch.Tensor]], g_names: list[str],
                theta: list[torch.Tensor], theta_next: list[torch.Tensor], optimizer: tuple[str, dict] | None,
                train: tuple[torch.Tensor, torch.Tensor | None] | None) -> dict[str, str]:
        """Write D and G before/after of ``step``, G's optimizer state before it and the step's own
        batch (``ganrobust.runs.step_inputs``; the run store records every SHA-256)."""
        names = self.writer.save_snapshots(step, {"D": d, "G_before": (g_names, theta),
                                                  "G_after": (g_names, theta_next)})
        opt_class, opt_state = optimizer or (None, None)
        z_train, c_train = train or (None, None)
        return {**names, **self.writer.save_step_inputs(step, step_input_states(
            step, opt_state, opt_class, z_train, c_train))}

    def append(self, record: Record) -> None:
        self.writer.append(record)

    def scalars(self, step: int, probe: dict[str, Any]) -> None:
        """The registry's TensorBoard metrics of a measured step (``ganrobust/<key>``), NaNs left out."""
        if self._tb is None:
            return
        for metric in metrics.view("tensorboard"):
            value = probe[metric.key]["value"]
            if value is not None and value == value:
                self._tb.add_scalar(f"ganrobust/{metric.key}", value, step)
        self._tb.flush()

    def write_checkpoint(self, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer | None,
                         opt_d: torch.optim.Optimizer | None, *, arch: dict[str, Any], gan_call: dict[str, Any],
                         bounds: tuple[float, float], generator_steps: int, device: torch.device) -> None:
        """``checkpoint.pt`` (weights_only-loadable, G's optimizer class recorded) and its SHA-256."""
        checkpoint = {
            "format": "ganrobust.checkpoint/1",
            "G": {k: v.detach().cpu() for k, v in G.state_dict().items()},
            "D": {k: v.detach().cpu() for k, v in D.state_dict().items()},
            "optimizer_G": None if opt_g is None else opt_g.state_dict(),
            "optimizer_D": None if opt_d is None else opt_d.state_dict(),
            "optimizer_G_class": None if opt_g is None else type(opt_g).__name__,
            "arch": arch, "gan_call": gan_call,
            "score": self.writer.manifest["score"], "data_range": list(bounds),
            "generator_steps": generator_steps,
        }
        with preserved_rng(device):
            self.writer.write_checkpoint(checkpoint)

    def close(self, error: str | None, **counts: Any) -> None:
        """Mark the run ``complete``, or ``stopped`` by ``error`` (everything measured so far is kept)."""
        if self._tb is not None:
            self._tb.close()
        self.writer.close(status="complete" if error is None else "stopped", stopped_by=error, **counts)
