"""Building the models a checkpoint's weights belong to: the built-in DCGAN and MLP pairs with
their hyperparameters read off the tensor shapes, a user's class from ``package.module:Class``
and its JSON keyword arguments, and loading weights with an error that names what does not fit.
Every problem is a :class:`~ganrobust.runs.store.CheckpointError` with the fix."""

from __future__ import annotations

import json
import re
from typing import Any

import torch
from torch import nn

from ganrobust.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, import_object
from ganrobust.optimizers import first_line
from ganrobust.recipes import rebuild
from ganrobust.runs.store import CheckpointError
from ganrobust.errors import marked, param

#: the options that build each network of a pair by hand
OPTIONS = {"generator": f"{param('generator_class')} pkg.mod:Class {param('generator_kwargs')} JSON",
           "discriminator": f"{param('discriminator_class')} pkg.mod:Class {param('discriminator_kwargs')} JSON"}


def _count(state: dict[str, torch.Tensor], pattern: str) -> list[str]:
    return sorted({m.group(1) for k in state if (m := re.match(pattern, k))}, key=int)


def infer_dcgan(g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor], *, sigmoid: bool
                ) -> tuple[nn.Module, nn.Module]:
    """Build a DCGAN pair whose hyperparameters are read off the tensor shapes."""
    try:
        w0 = g_state["main.0.weight"]                     # (nz, ngf * 2^(n-1), 4, 4)
        convs = [i for i in _count(g_state, r"main\.(\d+)\.weight") if g_state[f"main.{i}.weight"].dim() == 4]
        last = g_state[f"main.{convs[-1]}.weight"]        # (ngf, nc, 4, 4)
        image_size = {4: 32, 5: 64}[len(convs)]
        G = DCGANGenerator(nz=w0.shape[0], ngf=last.shape[0], nc=last.shape[1], image_size=image_size)
        sn = any("parametrizations" in k for k in d_state)
        d0 = d_state["main.0.parametrizations.weight.original" if sn else "main.0.weight"]  # (ndf, nc, 4, 4)
        D = DCGANDiscriminator(ndf=d0.shape[0], nc=d0.shape[1], image_size=image_size, sigmoid=sigmoid, spectral_norm=sn)
    except (KeyError, IndexError) as err:
        raise CheckpointError(f"the weights do not look like a DCGAN pair (no {err}); pass {param('generator_class')}/"
                              f"{param('discriminator_class')} for your architecture") from None
    return G, D


def infer_mlp(g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor]) -> tuple[nn.Module, nn.Module]:
    try:
        g_layers = _count(g_state, r"net\.(\d+)\.weight")
        d_keys = [k for k in d_state if k.endswith("weight") and "net." in k]
        first_g = g_state[f"net.{g_layers[0]}.weight"]
        last_g = g_state[f"net.{g_layers[-1]}.weight"]
        sn = any("parametrizations" in k for k in d_state)
        G = MLPGenerator(nz=first_g.shape[1], hidden=first_g.shape[0], dim=last_g.shape[0], depth=len(g_layers) - 1)
        d_first = d_state[sorted(d_keys)[0]]
        D = MLPDiscriminator(dim=d_first.shape[1], hidden=d_first.shape[0], depth=len(_count(d_state, r"net\.(\d+)\.")) - 1,
                             spectral_norm=sn)
    except (KeyError, IndexError) as err:
        raise CheckpointError(f"the weights do not look like an MLP pair (no {err}); pass {param('generator_class')}") from None
    return G, D


def import_class(spec: str) -> type[nn.Module]:
    """``package.module:Class`` -> the class, with a clear error."""
    try:
        obj = import_object(spec)
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise CheckpointError(f"{spec!r} is not an nn.Module class")
    return obj


def build(spec: str, kwargs: dict[str, Any] | str | None) -> nn.Module:
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as err:
            raise CheckpointError(f"keyword arguments must be a JSON object, got {kwargs!r} ({err.msg})") from None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise CheckpointError(f"keyword arguments must be a JSON object, got {kwargs!r}")
    cls = import_class(spec)
    try:
        return cls(**(kwargs or {}))
    except Exception as err:
        raise CheckpointError(f"{spec}(**{kwargs}) failed: {first_line(err)}") from None


def recorded_pair(refs: dict[str, Any], where: str) -> tuple[nn.Module, nn.Module] | None:
    """G and D built from the classes and constructor arguments a run recorded (``models`` of its
    manifest, ``arch`` of its checkpoint; :func:`ganrobust.recipes.model_recipe`). None when it
    recorded no arguments for one of them (the tensor shapes may still tell a DCGAN or an MLP);
    CheckpointError, naming what to import or which option to pass, when a recorded class does
    not import here or does not build."""
    if not refs or any(not (refs.get(w) or {}).get("class") or (refs.get(w) or {}).get("kwargs") is None
                       for w in OPTIONS):
        return None
    return _rebuilt(refs, "generator", where), _rebuilt(refs, "discriminator", where)


def _rebuilt(refs: dict[str, Any], which: str, where: str) -> nn.Module:
    ref = refs[which]
    try:
        module = rebuild(ref["class"], ref.get("kwargs"), what=f"the {which}'s class", option=OPTIONS[which],
                         args=ref.get("args"), script=ref.get("script"))
    except ValueError as err:
        raise CheckpointError(f"{where}: {marked(err)}") from None
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"{where}: the {which}'s class {ref['class']} does not build an nn.Module; pass "
                              f"{OPTIONS[which]}")
    return module


def unrecorded(refs: dict[str, Any], where: str) -> str | None:
    """Why a run's record does not rebuild its networks, with the option to pass (None: nothing recorded)."""
    for which in OPTIONS:
        ref = refs.get(which) or {}
        if ref.get("class") and ref.get("kwargs") is None:
            how = ref.get("kwargs_from") or "not recorded"
            return (f"{where}: the run recorded the {which}'s class {ref['class']} but not its constructor arguments "
                    f"({how}); pass {OPTIONS['generator']} {OPTIONS['discriminator']}, or watch(..., "
                    f"{'generator' if which == 'generator' else 'discriminator'}_kwargs=...) when training")
    return None


def load_into(module: nn.Module, state: dict[str, torch.Tensor], which: str, where: str) -> None:
    own = module.state_dict()
    mismatched = [f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}"
                  for key, value in state.items() if key in own and own[key].shape != value.shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if not (missing or unexpected or mismatched):
        try:
            module.load_state_dict(state, strict=True)
            return
        except RuntimeError as err:
            raise CheckpointError(f"{where}: {which} weights do not load into {type(module).__name__}: "
                                  f"{first_line(err)}") from None
    parts = []
    if missing:
        parts.append(f"missing {missing[:3]}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:3]}")
    if mismatched:
        parts.append(f"shape mismatch {mismatched[:2]}")
    raise CheckpointError(f"{where}: {which} weights do not fit {type(module).__name__} ({'; '.join(parts)}); "
                          f"check {param('arch')} or the class and its kwargs")


def infer_latent_shape(G: nn.Module) -> tuple[int, ...]:
    if isinstance(G, DCGANGenerator):
        return (G.nz, 1, 1)
    nz = getattr(G, "nz", getattr(G, "z_dim", None))
    if isinstance(nz, int):
        return (nz,)
    for m in G.modules():
        if isinstance(m, (nn.Linear,)):
            return (m.in_features,)
        if isinstance(m, nn.ConvTranspose2d):
            return (m.in_channels, 1, 1)
    raise CheckpointError(f"cannot tell the generator's latent size; pass {param('latent_shape')}")
