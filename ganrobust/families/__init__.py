"""GAN families as plugins: one module per codebase, recognising its files, building its networks,
naming its call adapter and its own generator update, and rebuilding itself from a run manifest.

The table is tried in order; the first family that recognises the files loads them (the one
loading step is :func:`ganrobust.runs.checkpoints.load_gan`, as StyleGAN2-ADA's
``legacy.load_network_pkl`` is one entry point). Adding a family is one module with a
:class:`~ganrobust.families.base.Family` and one line here, before ``generic``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ganrobust.families import biggan, dcgan, ganrobust_run, generic, mimicry, pytorch_gan, studiogan, stylegan
from ganrobust.families.base import Family, Found, LoadedGAN, Options, Update
from ganrobust.runs.store import CheckpointError
from ganrobust.errors import param

FAMILIES: tuple[Family, ...] = (
    ganrobust_run.FAMILY,   # checkpoint.pt of ganrobust.watch / ganrobust train
    stylegan.FAMILY,        # network-snapshot-*.pkl
    studiogan.FAMILY,       # model=G-*-weights-step=N.pth + model=D-...
    biggan.FAMILY,          # weights/RUN/G.pth + D.pth + state_dict.pth
    mimicry.FAMILY,         # netG/netG_N_steps.pth + netD/netD_N_steps.pth
    pytorch_gan.FAMILY,     # generator_N.pth + discriminator_N.pth
    dcgan.FAMILY,           # netG_epoch_N.pth + netD_epoch_N.pth
    generic.FAMILY,         # any dict of G and D, any pair of files
)
BY_NAME = {family.name: family for family in FAMILIES}

__all__ = ["BY_NAME", "FAMILIES", "Family", "Found", "LoadedGAN", "Options", "Update", "rebuild", "recognise"]


def recognise(found: Found) -> Family:
    """The first family of the table that recognises ``found``; CheckpointError (with the fix) when none does."""
    for family in FAMILIES:
        if family.recognises(found):
            return family
    if isinstance(found.obj, nn.Module):
        raise CheckpointError(f"{found.where} is a single module; pass the generator and discriminator as a pair "
                              f"({param('generator')} G.pt {param('discriminator')} D.pt)")
    raise CheckpointError(f"{found.where} holds a {type(found.obj).__name__}, not a checkpoint dict")


def rebuild(manifest: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Fresh G and D from a run manifest: by the family it names (``family``), else from the class
    paths and constructor arguments the hook recorded."""
    name = manifest.get("family")
    if name is not None and name not in BY_NAME:
        raise CheckpointError(f"the manifest names family {name!r}; known: {sorted(BY_NAME)}")
    family = BY_NAME.get(name or "ganrobust", ganrobust_run.FAMILY)
    built = family.rebuild(manifest)
    return built if built is not None else ganrobust_run.FAMILY.rebuild(manifest)  # type: ignore[return-value]
