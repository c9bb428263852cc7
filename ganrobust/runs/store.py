"""Runs on disk: what the hook writes and what ``audit``, ``report`` and ``compare`` read.
(One module: writer and reader side by side keep the run format — every path in a run
directory — in one place.)

    run_dir/
      manifest.json          schema, versions, config, models, data range, score convention, seeds
      steps.jsonl            one JSON object per line, appended and flushed as steps finish
      samples/step_*.safetensors   per-sample arrays of each measured step
      probes.safetensors     the held-out probe latents Z
      snapshots/*.safetensors      D (and G before/after) at persisted steps
      checkpoint.pt          G, D, optimizer states and architecture references (weights_only)

This module is the only code that reads or writes a run directory: every path inside one is
built here (tests/test_architecture.py checks that no other module names them). Reports are
written by :mod:`ganrobust.report`, into their own directories. A reader accepts runs that were
cut off mid-write (a killed process) and says what was missing.

Lines of ``steps.jsonl`` are typed records (:mod:`ganrobust.records`): the writer appends
``record.to_dict()``, the reader turns each line back with ``records.from_dict``.

Integrity: the SHA-256 of ``checkpoint.pt`` and of every snapshot is recorded in the manifest
(``"sha256": {relative path: hex digest}``) as each is written; readers check a file against
it before loading (:func:`file_matches`). Runs written before hashes were recorded have none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors

from ganrobust import metrics, records
from ganrobust.records import RUN_SCHEMA, SUPPORTED_SCHEMAS, StepRecord
from ganrobust.errors import InputError, param
CHECKPOINT = "checkpoint.pt"
MANIFEST = "manifest.json"
SNAPSHOT_KINDS = ("D", "G_before", "G_after")
PROBES = "probes.safetensors"
STEPS = "steps.jsonl"


class CheckpointError(InputError):
    """A checkpoint or run file that cannot be used; the message says why and what to do."""


class IntegrityError(CheckpointError):
    """A run file whose bytes differ from the SHA-256 its manifest recorded."""


def snapshot_file(step: int, kind: str) -> str:
    """The path, relative to the run directory, of the snapshot of ``kind`` (D, G_before, G_after) at ``step``."""
    names = {"D": f"d_{step:07d}", "G_before": f"g_{step:07d}_before", "G_after": f"g_{step:07d}_after",
             # optional (ganrobust.runs.step_inputs): G's optimizer before the step, the step's own batch
             "G_optimizer": f"g_{step:07d}_optimizer", "batch": f"g_{step:07d}_batch"}
    if kind not in names:
        raise InputError(f"expected a snapshot kind among {tuple(names)}, got {kind!r}")
    return f"snapshots/{names[kind]}.safetensors"


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_matches(run_dir: str | os.PathLike[str], relpath: str) -> bool | None:
    """Whether ``run_dir/relpath`` has the SHA-256 its run's manifest recorded for it; None when
    nothing was recorded (no manifest, an unreadable one, or a run from before hashes were kept)."""
    path = Path(run_dir)
    try:
        recorded = (json.loads((path / MANIFEST).read_text()).get("sha256") or {}).get(relpath)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(recorded, str):
        return None
    return sha256_of(path / relpath) == recorded


def verify_run_file(run_dir: str | os.PathLike[str], relpath: str, verify: bool = True) -> None:
    """IntegrityError when ``run_dir/relpath`` differs from the SHA-256 the run's manifest recorded.

    Files with no recorded hash (runs written before hashes were kept) pass unchecked.
    """
    if verify and file_matches(run_dir, relpath) is False:
        raise IntegrityError(f"{Path(run_dir) / relpath} does not match the SHA-256 recorded in the run's "
                             f"manifest.json (corrupted or changed since it was written); pass {param('verify')} to "
                             f"use it anyway")


def save_state(path: Path, names: list[str], tensors: list[torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors to ``path`` (safetensors) atomically: a killed run leaves no half file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_tensors({n: t.detach().contiguous().cpu().clone() for n, t in zip(names, tensors)}, str(tmp),
                 metadata=metadata)
    tmp.replace(path)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    return load_tensors(str(path))


def persisted_steps(run_dir: str | os.PathLike[str]) -> list[int]:
    """Steps of a run whose D and G before/after snapshots are all on disk, ascending."""
    run = Path(run_dir)
    steps = []
    for path in (run / "snapshots").glob("d_*.safetensors"):
        m = re.fullmatch(r"d_(\d+)\.safetensors", path.name)
        if m and all((run / snapshot_file(int(m.group(1)), kind)).exists() for kind in SNAPSHOT_KINDS):
            steps.append(int(m.group(1)))
    return sorted(steps)


def load_snapshot(run_dir: str | os.PathLike[str], step: int, kind: str, *, verify: bool = True
                  ) -> dict[str, torch.Tensor]:
    """The state dict of snapshot ``kind`` (D, G_before, G_after) at ``step``, checked against the
    SHA-256 the run recorded (IntegrityError) unless ``verify`` is False; CheckpointError when the
    file cannot be read."""
    relpath = snapshot_file(step, kind)
    verify_run_file(run_dir, relpath, verify)
    try:
        return load_state(Path(run_dir) / relpath)
    except Exception as err:  # safetensors raises its own error types for truncated files
        text = str(err).strip().splitlines()
        raise CheckpointError(f"{Path(run_dir) / relpath} cannot be read ({type(err).__name__}: "
                              f"{text[0] if text else ''}); is it truncated?") from None


def is_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run directory that recorded steps."""
    return Path(path).is_dir() and (Path(path) / STEPS).exists()


def holds_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` already holds a run (a manifest): a writer refuses it."""
    return (Path(path) / MANIFEST).exists()


def remove_run(path: str | os.PathLike[str]) -> None:
    """Delete the run directory ``path`` (the demo regenerates its own run)."""
    shutil.rmtree(path)


def read_sibling_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of the run directory a file lies in, if it is one (read tolerantly)."""
    try:
        manifest = json.loads((Path(path).parent / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


class SnapshotResults:
    """The per-snapshot results of an audit, one JSON file each under ``<out>/snapshots/``, written as
    soon as each is done, so an interrupted sweep resumes where it stopped."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.dir = Path(out) / "snapshots"

    def _path(self, step: int) -> Path:
        return self.dir / f"step_{step:07d}.json"

    def get(self, step: int) -> dict[str, Any] | None:
        path = self._path(step)
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, step: int, result: dict[str, Any]) -> dict[str, Any]:
        """Write ``result`` atomically; returns it as read back (the JSON form every reader sees)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(step)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(to_jsonable(result)))
        tmp.replace(path)
        return json.loads(path.read_text())


def clear_snapshot_results(out: str | os.PathLike[str]) -> None:
    """Remove the per-snapshot results under ``out`` (the demo regenerates its own)."""
    shutil.rmtree(SnapshotResults(out).dir, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if v != v else (v if abs(v) != float("inf") else ("inf" if v > 0 else "-inf"))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):
        return value.value
    return value


class RunWriter:
    """Append-only writer of a run directory."""

    def __init__(self, run_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
        self.dir = Path(run_dir)
        if (self.dir / MANIFEST).exists() or (self.dir / STEPS).exists():
            # appending a new run to an old one would mix their steps; never overwrite a run either
            raise InputError(f"{self.dir} already holds a ganrobust run; pass a new run directory or remove that one")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "samples").mkdir(exist_ok=True)
        (self.dir / "snapshots").mkdir(exist_ok=True)
        self.manifest = {"schema": RUN_SCHEMA, "status": "running", "started": time.time(), **manifest}
        self.write_manifest()
        self._steps = open(self.dir / STEPS, "a", encoding="utf-8")

    def write_manifest(self, **updates: Any) -> None:
        self.manifest.update(updates)
        _atomic_write(self.dir / MANIFEST, json.dumps(to_jsonable(self.manifest), indent=2))

    def record_file(self, *relpaths: str) -> None:
        """Record the SHA-256 of files just written in the run directory, so readers can verify them."""
        hashes = self.manifest.setdefault("sha256", {})
        for relpath in relpaths:
            hashes[relpath] = sha256_of(self.dir / relpath)
        self.write_manifest()

    def append(self, record: records.Record) -> None:
        """One line of ``steps.jsonl``, flushed: a killed run keeps every finished record."""
        self._steps.write(json.dumps(to_jsonable(record.to_dict())) + "\n")
        self._steps.flush()

    def save_probes(self, z: torch.Tensor, c: torch.Tensor | None = None) -> None:
        """The held-out probe latents Z, fixed for the whole run, and their conditions C
        (conditional GANs): conditions travel with the probes."""
        save_state(self.dir / PROBES, ["z"] + (["c"] if c is not None else []), [z] + ([c] if c is not None else []))

    def save_snapshots(self, step: int, states: dict[str, tuple[list[str], list[torch.Tensor]]]) -> dict[str, str]:
        """Write the snapshots of ``step`` (kind -> (names, tensors)) and record their SHA-256;
        returns kind -> path relative to the run directory."""
        names = {kind: snapshot_file(step, kind) for kind in states}
        for kind, (keys, tensors) in states.items():
            save_state(self.dir / names[kind], keys, tensors, {"step": str(step)})
        self.record_file(*names.values())
        return names

    def save_step_inputs(self, step: int, states: dict[str, tuple[list[str], list[torch.Tensor], dict[str, str]]]
                         ) -> dict[str, str]:
        """The optional files of ``step`` (:mod:`ganrobust.runs.step_inputs`: G's optimizer state
        before the step, the step's batch), written atomically with their SHA-256 recorded."""
        from ganrobust.runs.step_inputs import write_step_inputs

        names = write_step_inputs(self.dir, step, states)
        self.record_file(*names.values())
        return names

    def write_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """``checkpoint.pt`` (torch.save, loadable with weights_only=True), atomically, and its SHA-256."""
        tmp = self.dir / (CHECKPOINT + ".tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(self.dir / CHECKPOINT)
        self.record_file(CHECKPOINT)

    def save_samples(self, step: int, prefix: str, samples: dict[str, np.ndarray]) -> str:
        rel = f"samples/step_{step:07d}_{prefix}.safetensors"
        arrays = {k: np.ascontiguousarray(v) for k, v in samples.items()}
        tmp = self.dir / (rel + ".tmp")
        save_numpy(arrays, str(tmp))
        tmp.replace(self.dir / rel)
        return rel

    def close(self, status: str = "complete", **updates: Any) -> None:
        if not self._steps.closed:
            self._steps.close()
        self.write_manifest(status=status, finished=time.time(), **updates)


@dataclass
class Run:
    dir: Path
    manifest: dict[str, Any]
    steps: list[StepRecord]
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete" and not self.problems

    def samples(self, step: int, prefix: str = "probe") -> dict[str, np.ndarray]:
        path = self.dir / f"samples/step_{step:07d}_{prefix}.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: per-sample arrays of step {step} were not written")
        return load_numpy(str(path))

    def probes(self) -> torch.Tensor:
        return load_state(self.dir / PROBES)["z"]

    def probe_conditions(self) -> torch.Tensor | None:
        """The probes' conditions ``c`` (conditional GANs), or None when the run has none."""
        return load_state(self.dir / PROBES).get("c")

    def training_rows(self) -> list[dict[str, Any]]:
        """Per measured step: the probe summary's metrics of the ``training`` view (the metric
        registry), D's steps since G's previous step, and the persistence of the step's flips."""
        return [{"step": record.step, **{key: record.probe[key] for key in metrics.keys("training")},
                 "d_steps": record.d_steps, "persists": None if record.persists is None else record.persists.to_dict(),
                 **({"phase": record.phase} if record.phase else {})}
                for record in self.steps]


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's manifest; ValueError (with the fix) when it is missing, unreadable or of an unknown schema."""
    path = Path(run_dir)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise InputError(f"{path} is not a ganrobust run: manifest.json is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{manifest_path} is not valid JSON ({err.msg}); the run cannot be read") from None
    schema = manifest.get("schema")
    if schema not in SUPPORTED_SCHEMAS:
        raise InputError(f"{path} has run schema {schema!r}; this ganrobust reads {', '.join(SUPPORTED_SCHEMAS)} — "
                         f"upgrade ganrobust to read it")
    return manifest


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory, tolerating a run that was killed mid-write.

    Raises ValueError (with the fix) for a missing or unreadable manifest or an unknown schema.
    """
    path = Path(run_dir)
    manifest = read_manifest(path)
    problems: list[str] = []
    if manifest.get("status") == "stopped":
        problems.append(f"the run was stopped by an error in the training loop ({manifest.get('stopped_by')})")
    elif manifest.get("status") != "complete":
        problems.append("the run did not finish (manifest status is not 'complete'): it was stopped or is still running")
    steps: dict[int, StepRecord] = {}
    for number, obj in _lines(path / STEPS, problems):
        try:
            record = records.from_dict(obj)
        except ValueError as err:
            problems.append(f"steps.jsonl line {number}: {err}; skipped")
            continue
        if isinstance(record, StepRecord):
            steps[record.step] = record
        elif isinstance(record, records.PersistsRecord) and record.step in steps:
            steps[record.step].persists = record.persists
    return Run(path, manifest, [steps[k] for k in sorted(steps)], problems)


def _lines(path: Path, problems: list[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    if not path.exists():
        problems.append("steps.jsonl is missing: no step was recorded")
        return []
    out = []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError:
            last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            problems.append(f"steps.jsonl line {number} is {'cut off (the run was killed mid-write)' if last else 'corrupt'}; skipped")
    return out
