"""What a persisted step keeps beside D and G before/after so that Odena's three arguments can be
replayed exactly at that step: G's optimizer (class and state *before* the step) and the batch
``(z, c)`` G's step was computed on (captured by the hook's forward pre-hook).

    snapshots/g_<step>_optimizer.safetensors   every tensor of G's optimizer state; the class,
                                               param groups and non-tensor entries in the metadata
    snapshots/g_<step>_batch.safetensors       z (and c) of the step's own forward

Both are written through :meth:`ganrobust.runs.RunWriter.save_snapshots`'s atomic writes and their
SHA-256 recorded in the manifest like every other snapshot. Both are optional: a run written before
they existed, or one watched with ``persist_optimizer=False``, has none (readers return None).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ganrobust.runs.store import CheckpointError, load_state, save_state, snapshot_file, verify_run_file

#: the optional per-step files: the optimizer (state before the step) and the step's own batch
STEP_INPUT_KINDS = ("G_optimizer", "batch")
_SEP = "/"


def flatten_optimizer_state(state: dict[str, Any]) -> tuple[list[str], list[torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` as (names, tensors, the rest): ``state/<param index>/<key>`` for
    every tensor entry; param groups and non-tensor entries (a float ``step``) go in the rest."""
    names: list[str] = []
    tensors: list[torch.Tensor] = []
    scalars: dict[str, Any] = {}
    for index, entry in state.get("state", {}).items():
        for key, value in entry.items():
            name = f"state{_SEP}{index}{_SEP}{key}"
            if isinstance(value, torch.Tensor):
                names.append(name)
                tensors.append(value)
            else:
                scalars[name] = value
    return names, tensors, {"param_groups": state.get("param_groups", []), "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_optimizer_state`: a dict ``load_state_dict`` accepts."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *rest.get("scalars", {}).items()]:
        _, index, key = name.split(_SEP, 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": dict(sorted(state.items())), "param_groups": rest.get("param_groups", [])}


def copy_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A detached copy of ``optimizer.state_dict()`` now (its tensors are updated in place by ``step``)."""
    state = optimizer.state_dict()
    return {"state": {i: {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in entry.items()}
                      for i, entry in state["state"].items()},
            "param_groups": json.loads(json.dumps(state["param_groups"], default=str))}


def step_input_states(step: int, optimizer: dict[str, Any] | None, optimizer_class: str | None,
                      z: torch.Tensor | None, c: torch.Tensor | None) -> dict[str, tuple[list[str], list[torch.Tensor], dict[str, str]]]:
    """The optional files of ``step`` as ``kind -> (names, tensors, metadata)`` for the writer."""
    out: dict[str, tuple[list[str], list[torch.Tensor], dict[str, str]]] = {}
    if optimizer is not None:
        names, tensors, rest = flatten_optimizer_state(optimizer)
        out["G_optimizer"] = (names, tensors, {"step": str(step), "class": optimizer_class or "",
                                               "rest": json.dumps(rest, default=str)})
    if z is not None:
        out["batch"] = (["z"] + (["c"] if c is not None else []), [z] + ([c] if c is not None else []),
                        {"step": str(step)})
    return out


def write_step_inputs(run_dir: Path, step: int, states: dict[str, tuple[list[str], list[torch.Tensor], dict[str, str]]]
                      ) -> dict[str, str]:
    """Write the optional files of ``step`` (atomically); returns kind -> relative path. The
    caller (the run writer) records their SHA-256."""
    names = {kind: snapshot_file(step, kind) for kind in states}
    for kind, (keys, tensors, metadata) in states.items():
        save_state(run_dir / names[kind], keys, tensors, metadata)
    return names


def has_step_input(run_dir: str | os.PathLike[str], step: int, kind: str) -> bool:
    return (Path(run_dir) / snapshot_file(step, kind)).exists()


def _read(run_dir: str | os.PathLike[str], step: int, kind: str, verify: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    relpath = snapshot_file(step, kind)
    path = Path(run_dir) / relpath
    if not path.exists():
        return None
    verify_run_file(run_dir, relpath, verify)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_state(path), metadata
    except Exception as err:  # a truncated file
        raise CheckpointError(f"{path} cannot be read ({type(err).__name__}); is it truncated?") from None


def load_optimizer_state(run_dir: str | os.PathLike[str], step: int, *, verify: bool = True
                         ) -> tuple[str | None, dict[str, Any]] | None:
    """(G's optimizer class, its state before ``step``) as persisted, or None when the run kept none."""
    read = _read(run_dir, step, "G_optimizer", verify)
    if read is None:
        return None
    tensors, metadata = read
    return metadata.get("class") or None, unflatten_optimizer_state(tensors, json.loads(metadata.get("rest", "{}")))


def load_training_batch(run_dir: str | os.PathLike[str], step: int, *, verify: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The latents (and conditions) G's step ``step`` was computed on, or None when not persisted."""
    read = _read(run_dir, step, "batch", verify)
    if read is None:
        return None
    tensors, _ = read
    return tensors["z"], tensors.get("c")
