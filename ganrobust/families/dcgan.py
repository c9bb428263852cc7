"""pytorch/examples ``dcgan/main.py``: ``netG_epoch_N.pth`` + ``netD_epoch_N.pth``, bare state dicts
saved after each epoch (no optimizer state), D ending in ``nn.Sigmoid``. Its own update:
``BCELoss`` of ``D(G(z))`` against the real label (the non-saturating loss) and Adam with its
argparse defaults ``--lr 0.0002 --beta1 0.5``."""

from __future__ import annotations

import re

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC

NAME = re.compile(r"^net[GD]_epoch_\d+\.pth$")


class PytorchExamplesDCGAN(Family):
    name = "dcgan"
    title = "pytorch/examples DCGAN (netG_epoch_N.pth + netD_epoch_N.pth)"
    update = Update(g_loss="ns", lr=2e-4, betas=(0.5, 0.999),
                    why="pytorch/examples dcgan/main.py: BCELoss against the real label, Adam lr 0.0002, beta1 0.5")

    def recognises(self, found: Found) -> bool:
        return found.pair and all(NAME.match(name) for name in found.names())

    def load(self, found: Found) -> LoadedGAN:
        return GENERIC.load_pair(found)


FAMILY = PytorchExamplesDCGAN()
