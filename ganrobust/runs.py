"""Runs on disk: what the hook writes and what ``audit``, ``report`` and ``compare`` read.

    run_dir/
      manifest.json          schema, versions, config, models, data range, score convention, seeds
      steps.jsonl            one JSON object per line, appended and flushed as steps finish
      samples/step_*.safetensors   per-sample arrays of each measured step
      probes.safetensors     the held-out probe latents Z
      snapshots/*.safetensors      D (and G before/after) at persisted steps
      checkpoint.pt          G, D, optimizer states and architecture references (weights_only)

Only this module and the report writers touch the file system. A reader accepts runs that
were cut off mid-write (a killed process) and says what was missing.

Integrity: the SHA-256 of ``checkpoint.pt`` and of every snapshot is recorded in the manifest
(``"sha256": {relative path: hex digest}``) as each is written; readers check a file against
it before loading (:func:`file_matches`). Runs written before hashes were recorded have none.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

from ganrobust.stats import Estimate

RUN_SCHEMA = "ganrobust.run/1"
SUPPORTED_SCHEMAS = (RUN_SCHEMA,)
CHECKPOINT = "checkpoint.pt"
MANIFEST = "manifest.json"
SNAPSHOT_KINDS = ("D", "G_before", "G_after")


def snapshot_file(step: int, kind: str) -> str:
    """The path, relative to the run directory, of the snapshot of ``kind`` (D, G_before, G_after) at ``step``."""
    names = {"D": f"d_{step:07d}", "G_before": f"g_{step:07d}_before", "G_after": f"g_{step:07d}_after"}
    if kind not in names:
        raise ValueError(f"expected a snapshot kind among {SNAPSHOT_KINDS}, got {kind!r}")
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
        if (self.dir / "manifest.json").exists() or (self.dir / "steps.jsonl").exists():
            # appending a new run to an old one would mix their steps; never overwrite a run either
            raise ValueError(f"{self.dir} already holds a ganrobust run; pass a new run directory or remove that one")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "samples").mkdir(exist_ok=True)
        (self.dir / "snapshots").mkdir(exist_ok=True)
        self.manifest = {"schema": RUN_SCHEMA, "status": "running", "started": time.time(), **manifest}
        self.write_manifest()
        self._steps = open(self.dir / "steps.jsonl", "a", encoding="utf-8")

    def write_manifest(self, **updates: Any) -> None:
        self.manifest.update(updates)
        _atomic_write(self.dir / "manifest.json", json.dumps(to_jsonable(self.manifest), indent=2))

    def record_file(self, *relpaths: str) -> None:
        """Record the SHA-256 of files just written in the run directory, so readers can verify them."""
        hashes = self.manifest.setdefault("sha256", {})
        for relpath in relpaths:
            hashes[relpath] = sha256_of(self.dir / relpath)
        self.write_manifest()

    def append(self, record: dict[str, Any]) -> None:
        self._steps.write(json.dumps(to_jsonable(record)) + "\n")
        self._steps.flush()

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
class StepRecord:
    """One measured generator step, as written by the hook."""

    step: int
    raw: dict[str, Any]
    persists: Estimate | None = None

    def estimate(self, key: str, batch: str = "probe") -> Estimate:
        return Estimate.from_dict(self.raw[batch][key])

    @property
    def aar(self) -> Estimate:
        return self.estimate("aar")

    @property
    def flip_rate(self) -> Estimate:
        return self.estimate("flip_rate")

    @property
    def noise_flip_rate(self) -> Estimate:
        return self.estimate("noise_flip_rate")


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
        from safetensors.torch import load_file

        return load_file(str(self.dir / "probes.safetensors"))["z"]

    def probe_conditions(self) -> torch.Tensor | None:
        """The probes' conditions ``c`` (conditional GANs), or None when the run has none."""
        from safetensors.torch import load_file

        return load_file(str(self.dir / "probes.safetensors")).get("c")


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's manifest; ValueError (with the fix) when it is missing, unreadable or of an unknown schema."""
    path = Path(run_dir)
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise ValueError(f"{path} is not a ganrobust run: manifest.json is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{manifest_path} is not valid JSON ({err.msg}); the run cannot be read") from None
    schema = manifest.get("schema")
    if schema not in SUPPORTED_SCHEMAS:
        raise ValueError(f"{path} has run schema {schema!r}; this ganrobust reads {', '.join(SUPPORTED_SCHEMAS)} — "
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
    records: dict[int, StepRecord] = {}
    lines = _lines(path / "steps.jsonl", problems)
    for number, obj in lines:
        kind = obj.get("kind", "step")
        if kind == "step":
            records[int(obj["step"])] = StepRecord(int(obj["step"]), obj)
        elif kind == "persists" and int(obj["step"]) in records:
            records[int(obj["step"])].persists = Estimate.from_dict(obj["persists"])
    return Run(path, manifest, [records[k] for k in sorted(records)], problems)


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
