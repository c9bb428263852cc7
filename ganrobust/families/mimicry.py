"""torch-mimicry (kwotsin/mimicry): its ``Trainer`` writes ``checkpoints/netG/netG_N_steps.pth`` and
``checkpoints/netD/netD_N_steps.pth``, each ``{"model_state_dict", "optimizer_state_dict",
"global_step"}`` (``BaseModel.save_checkpoint``). The classes come from ``--generator-class``
(``torch_mimicry.nets.sngan:SNGANGenerator32``, ...). Its own update is the model's: every mimicry
network carries ``loss_type`` (``gan`` minimax, ``ns``, ``hinge`` — the default of SNGAN, cGAN-PD,
SSGAN ... — or ``wasserstein``), and G's optimizer state is in its file."""

from __future__ import annotations

import re

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC

NAME = re.compile(r"^net[GD]_\d+_steps\.pth$")
#: mimicry's loss_type -> the audit's name of the same generator loss (nets/gan/gan.py)
LOSSES = {"gan": "bce", "ns": "ns", "hinge": "hinge", "wasserstein": "wasserstein"}


class Mimicry(Family):
    name = "mimicry"
    title = "torch-mimicry (netG/netG_N_steps.pth + netD/netD_N_steps.pth)"
    update = Update(g_loss="hinge", why="torch-mimicry's default loss_type 'hinge'")

    def recognises(self, found: Found) -> bool:
        return found.pair and all(NAME.match(name) for name in found.names())

    def load(self, found: Found) -> LoadedGAN:
        loaded = GENERIC.load_pair(found, source="torch-mimicry checkpoints")
        loss_type = getattr(loaded.G, "loss_type", None)
        if loss_type in LOSSES:
            loaded.update = Update(g_loss=LOSSES[loss_type], why=f"the mimicry generator's loss_type {loss_type!r}")
        return loaded


FAMILY = Mimicry()
