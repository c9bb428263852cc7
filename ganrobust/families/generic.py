"""The family every state-dict checkpoint falls back to: a dict holding G and D (any of the layouts
:mod:`ganrobust.families.layouts` knows), or a pair of network files. The networks are built from
the user's class paths (``--generator-class``), a family's own builder, or the built-in DCGAN/MLP
pairs with hyperparameters read off the tensor shapes; the weights are then loaded into them.
Other families reuse :func:`load_networks` with their own builder, optimizer state and update."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ganrobust.families import layouts
from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.runs.architectures import (build, infer_dcgan, infer_latent_shape, infer_mlp, load_into,
                                         recorded_pair, unrecorded)
from ganrobust.runs.store import CheckpointError
from ganrobust.errors import param

State = dict[str, torch.Tensor]
#: a family's own way to build (G, D) for the given state dicts (None where the file held a module)
Builder = Callable[[State | None, State | None], tuple[nn.Module, nn.Module]]


def user_classes(found: Found) -> tuple[nn.Module, nn.Module] | None:
    """G and D from ``--generator-class``/``--discriminator-class`` (and their JSON kwargs), if given."""
    o = found.options
    if not o.classes:
        return None
    if not (o.generator_class and o.discriminator_class):
        raise CheckpointError(f"pass both {param('generator_class')} and {param('discriminator_class')}")
    return build(o.generator_class, o.generator_kwargs), build(o.discriminator_class, o.discriminator_kwargs)


def load_networks(found: Found, g_obj: Any, d_obj: Any, *, source: str, builder: Builder | None = None,
                  arch_refs: dict[str, Any] | None = None, notes: list[str] | None = None, **extra: Any) -> LoadedGAN:
    """A :class:`LoadedGAN` from G's and D's entries (modules or state dicts): the networks are built
    by, in order, the user's classes, ``builder``, the architecture references a ganrobust checkpoint
    holds, or shape inference (DCGAN, MLP); ``extra`` fills the other fields. A builder that cannot
    build (its code not importable, its config missing) raises CheckpointError, which is the error
    shown when shape inference cannot build them either."""
    where = found.where
    notes = list(found.notes) + list(notes or [])
    G, g_state = layouts.materialise(g_obj, "generator", where)
    D, d_state = layouts.materialise(d_obj, "discriminator", where)
    if G is None or D is None:
        o, refs = found.options, arch_refs or {}
        built = user_classes(found)
        failed: CheckpointError | None = None  # the family's builder, when it cannot build: said if nothing else can
        if built is None and builder is not None and not o.arch:
            try:
                built = builder(g_state, d_state)
            except CheckpointError as err:
                failed = err
        if built is None and not o.arch:
            built = recorded_pair(refs, where)  # the classes and constructor arguments the run recorded
        if built is None and o.arch in ("dcgan", None) and g_state is not None and "main.0.weight" in g_state:
            built = infer_dcgan(g_state, d_state or {}, sigmoid=o.d_output == "prob")
            notes.append("DCGAN hyperparameters inferred from tensor shapes")
        if built is None and (o.arch == "mlp" or (g_state is not None and any(k.startswith("net.") for k in g_state)
                                                  and unrecorded(refs, where) is None)):  # a recorded class: not guessed
            built = infer_mlp(g_state or {}, d_state or {})
            notes.append("MLP hyperparameters inferred from tensor shapes")
        if built is None:
            raise failed or CheckpointError(unrecorded(refs, where) or f"{where}: cannot tell the architecture; pass "
                                            f"{param('arch')} dcgan|mlp or {param('generator_class')} pkg.mod:Class {param('discriminator_class')} "
                                            f"pkg.mod:Class")
        if G is None:
            assert g_state is not None
            load_into(built[0], g_state, "generator", where)
            G = built[0]
        if D is None:
            assert d_state is not None
            load_into(built[1], d_state, "discriminator", where)
            D = built[1]
    latent = found.options.latent_shape
    return LoadedGAN(G=G, D=D, source=source, latent_shape=tuple(latent) if latent else infer_latent_shape(G),
                     notes=notes, **extra)


def lightning_optimizer(states: list[Any], G: nn.Module) -> dict[str, Any] | None:
    """G's state among Lightning's ``optimizer_states``: the one with as many parameters as G."""
    n_g = len(list(G.parameters()))
    return next((s for s in states if isinstance(s, dict) and
                 sum(len(g["params"]) for g in s.get("param_groups", [])) == n_g), None)


class Generic(Family):
    name = "generic"
    title = "a dict of G and D state dicts, or a pair of network files"
    update = Update()

    def recognises(self, found: Found) -> bool:
        return found.pair or isinstance(found.obj, dict)

    def load(self, found: Found) -> LoadedGAN:
        if found.pair:
            return self.load_pair(found)
        obj = found.obj
        pair = layouts.find_pair(obj)
        if pair is None:
            raise CheckpointError(
                f"{found.where}: no generator/discriminator found; expected keys like G/D, generator/discriminator or "
                f"netG/netD (a _state_dict suffix allowed, also nested under state_dict/model_state_dict/model/"
                f"ema), or a Lightning state_dict with generator./discriminator. prefixes; found keys: "
                f"{layouts.found_keys(obj)}")
        g_obj, d_obj, how = pair
        opt_state = layouts.g_optimizer(obj)
        loaded = load_networks(found, g_obj, d_obj, source=f"dict ({how})", optimizer_g=opt_state)
        if opt_state is None and isinstance(obj.get("optimizer_states"), list):
            loaded.optimizer_g = lightning_optimizer(obj["optimizer_states"], loaded.G)
            if loaded.optimizer_g is not None:
                loaded.notes.append("G's optimizer state matched among Lightning optimizer_states by parameter count")
        return loaded

    def load_pair(self, found: Found, *, builder: Builder | None = None, source: str = "pair of files",
                  **extra: Any) -> LoadedGAN:
        """A pair of network files: weights (or modules), G's optimizer state from G's file."""
        g_obj, g_opt, g_key = layouts.network_entry(found.g_raw)
        d_obj, _, _ = layouts.network_entry(found.d_raw)
        notes: list[str] = []
        if g_opt is not None:
            notes.append(f"G's optimizer state read from {found.generator.name}")  # type: ignore[union-attr]
        score: dict[str, Any] = {}
        origins: dict[str, str] = {}
        if found.options.d_output is None and found.options.arch == "dcgan":
            found.options.d_output = "prob"  # pytorch/examples' netD ends in nn.Sigmoid
            notes.append("assumed the pytorch/examples D with a trailing Sigmoid (kind='prob'); pass --d-output logit if not")
            origins["kind"] = "default"
        extra.setdefault("optimizer_g", g_opt)
        return load_networks(found, g_obj, d_obj, source=source + (f" (weights under {g_key!r})" if g_key else ""),
                             builder=builder, notes=notes, score=score, origins=origins, **extra)


FAMILY = Generic()
