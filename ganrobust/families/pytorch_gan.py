"""eriklindernoren/PyTorch-GAN: ``generator_N.pth`` + ``discriminator_N.pth``, bare state dicts of
the script's ``Generator``/``Discriminator`` (its image-to-image scripts save them; ``dcgan.py``
and ``acgan.py`` save nothing: add ``torch.save(generator.state_dict(), "generator_%d.pth" % epoch)``
and the same for the discriminator). The classes come from ``--generator-class`` (a ``models.py``
in the working directory is found). Its own update: ``BCELoss`` of ``D(G(z))`` against ``valid``
(non-saturating) and Adam with its argparse defaults ``--lr 0.0002 --b1 0.5 --b2 0.999``; the AC-GAN's
D returns ``(validity, label)`` with a Sigmoid on ``validity`` (``--head 0``, detected as prob)."""

from __future__ import annotations

import re

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC

NAME = re.compile(r"^(generator|discriminator)_\d+\.pth$")


class PyTorchGAN(Family):
    name = "pytorch-gan"
    title = "PyTorch-GAN (generator_N.pth + discriminator_N.pth)"
    update = Update(g_loss="ns", lr=2e-4, betas=(0.5, 0.999),
                    why="PyTorch-GAN's scripts: BCELoss against valid, Adam lr 0.0002, b1 0.5, b2 0.999")

    def recognises(self, found: Found) -> bool:
        return found.pair and all(NAME.match(name) for name in found.names())

    def load(self, found: Found) -> LoadedGAN:
        return GENERIC.load_pair(found)


FAMILY = PyTorchGAN()
