"""How checkpoint files hold G and D, whichever codebase wrote them: the usual key pairs of a dict
(``G``/``D``, ``netG``/``netD``, ``generator``/``discriminator`` ..., a ``_state_dict`` suffix
allowed, Lightning prefixes, nested one level under ``state_dict``/``model``/``ema`` ...), the keys
of a one-network file (``state_dict``, ``model_state_dict``, its optimizer's state), and a network
file's partner found by name. Families use these to recognise and unpack their files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust.runs.store import CheckpointError

PAIRS = [("G", "D"), ("generator", "discriminator"), ("netG", "netD"), ("gen", "disc"), ("g", "d"),
         ("gen", "dis"), ("model_G", "model_D"), ("modelG", "modelD"), ("net_G", "net_D")]
G_OPTIMIZER_KEYS = ("optimizer_G", "optimizerG", "opt_g", "optimizer_g", "g_optimizer", "optim_g", "optG",
                    "optim_G", "opt_G", "optimizer_gen", "gen_optimizer", "G_optimizer", "G_optim", "optimizer_generator")
#: containers a pair of networks is often nested under
NESTINGS = ("state_dict", "model_state_dict", "model", "models", "ema", "networks", "nets")
#: keys of a one-network file that hold its weights, and its optimizer's state
NETWORK_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
NETWORK_OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optim", "opt", "optimizer_state")
#: name tokens of a generator file and its discriminator partner (delimited by non-alphanumerics)
FILE_TOKENS = (("netG", "netD"), ("generator", "discriminator"), ("Generator", "Discriminator"),
               ("gen", "dis"), ("gen", "disc"), ("G", "D"), ("g", "d"))
SUFFIX = "_state_dict"
STRIP = ("module.", "_orig_mod.")


def strip(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in STRIP:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        sum(isinstance(v, torch.Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def key_base(key: str) -> str:
    """``netG_state_dict`` -> ``netG``: the tutorial suffix says nothing about which network."""
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) and len(key) > len(SUFFIX) else key


def find_pair(obj: dict[str, Any], _depth: int = 0) -> tuple[Any, Any, str] | None:
    """G's and D's entries of a checkpoint dict: usual key pairs (with or without a
    ``_state_dict`` suffix), Lightning prefixes, or either nested one level down."""
    bases = {key_base(k): k for k in obj if isinstance(k, str)}
    for g_key, d_key in PAIRS:
        if g_key in bases and d_key in bases:
            g, d = bases[g_key], bases[d_key]
            return obj[g], obj[d], f"keys {g!r}/{d!r}"
    state = obj.get("state_dict")
    if isinstance(state, dict):
        for g_pre, d_pre in (("generator.", "discriminator."), ("netG.", "netD."), ("G.", "D."), ("gen.", "disc.")):
            g = {k[len(g_pre):]: v for k, v in state.items() if k.startswith(g_pre)}
            d = {k[len(d_pre):]: v for k, v in state.items() if k.startswith(d_pre)}
            if g and d:
                return g, d, f"state_dict prefixes {g_pre!r}/{d_pre!r}"
    if _depth == 0:
        for key in NESTINGS:
            inner = obj.get(key)
            if isinstance(inner, dict) and not is_state_dict(inner):
                found = find_pair(inner, 1)
                if found is not None:
                    return found[0], found[1], f"{found[2]} under {key!r}"
    return None


def found_keys(obj: dict[str, Any]) -> str:
    """The keys a checkpoint holds, nested containers included, for a 'nothing matched' error."""
    parts = [", ".join(sorted(map(str, obj))[:12]) + (" ..." if len(obj) > 12 else "")]
    for key in NESTINGS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner:
            parts.append(f"under {key!r}: " + ", ".join(sorted(map(str, inner))[:8]) + (" ..." if len(inner) > 8 else ""))
    return "; ".join(parts)


def g_optimizer(obj: dict[str, Any]) -> dict[str, Any] | None:
    """G's optimizer state in a pair checkpoint (``optimizerG``, ``optimizerG_state_dict``, ...),
    at the top level or in a nesting container."""
    for where in (obj, *(obj.get(k) for k in NESTINGS)):
        if not isinstance(where, dict):
            continue
        for key, value in where.items():
            if isinstance(key, str) and key_base(key) in G_OPTIMIZER_KEYS and isinstance(value, dict):
                return value
    return None


def network_entry(obj: Any) -> tuple[Any, dict[str, Any] | None, str | None]:
    """A one-network file: (its weights or module, its optimizer state, the key the weights were under)."""
    if not isinstance(obj, dict) or is_state_dict(obj):
        return obj, None, None
    for key in NETWORK_KEYS:
        if key in obj and (is_state_dict(obj[key]) or isinstance(obj[key], nn.Module)):
            opt = next((obj[k] for k in NETWORK_OPTIMIZER_KEYS if isinstance(obj.get(k), dict)), None)
            return obj[key], opt, key
    return obj, None, None


def one_network(obj: Any) -> bool:
    """A file holding one network (bare weights, a module, or weights under ``state_dict``/...)."""
    if isinstance(obj, nn.Module) or is_state_dict(obj):
        return True
    return isinstance(obj, dict) and find_pair(obj) is None and network_entry(obj)[2] is not None


def partner_file(path: Path) -> tuple[Path, Path] | None:
    """``(generator file, discriminator file)`` for one of them, matched by name: the other file
    has the same name with the network's token swapped (``netG``/``netD``, ``generator``/
    ``discriminator``, ``G``/``D`` between non-letters, ...). None when no such file exists."""
    name = path.name
    for g_tok, d_tok in FILE_TOKENS:
        for mine, other, is_g in ((g_tok, d_tok, True), (d_tok, g_tok, False)):
            pattern = rf"(?<![A-Za-z0-9]){re.escape(mine)}(?![A-Za-z0-9])"
            if not re.search(pattern, name):
                continue
            # the same folder, or a sibling folder named the same way (torch-mimicry's netG/ and netD/)
            folder = path.absolute().parent  # a bare file name's folder is '.', which has no name to swap
            for candidate in (path.with_name(re.sub(pattern, other, name)),
                              folder.with_name(re.sub(pattern, other, folder.name)) / re.sub(pattern, other, name)):
                if candidate != path and candidate.is_file():
                    return (path, candidate) if is_g else (candidate, path)
    return None


def check_finite(state: dict[str, torch.Tensor], which: str, where: str) -> None:
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where}: {which} weight {key!r} contains NaN or inf (a diverged run?); "
                                  f"audit an earlier checkpoint")




def materialise(obj: Any, which: str, where: str) -> tuple[nn.Module | None, dict[str, torch.Tensor] | None]:
    """A network entry as (a whole module, None) or (None, its state dict with DDP/compile prefixes
    stripped and checked for NaN/inf)."""
    if isinstance(obj, nn.Module):  # trusted whole module or TorchScript
        return obj, None
    if is_state_dict(obj):
        state = strip(obj)
        check_finite(state, which, where)
        return None, state
    inner, _, _ = network_entry(obj)
    if inner is not obj:
        return materialise(inner, which, where)
    raise CheckpointError(f"{where}: the {which} entry is a {type(obj).__name__}, not a state dict or module")
