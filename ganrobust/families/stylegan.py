"""StyleGAN2-ADA / StyleGAN3 snapshots (``network-snapshot-*.pkl``): a plain pickle of ``G``, ``D``,
``G_ema``, ``augment_pipe`` and ``training_set_kwargs``, read only with ``trust=True`` (the loading
step's reader refuses it otherwise), whose networks need StyleGAN's own code on ``PYTHONPATH``.

The replayed update is that of ``G``, the network the optimizer trains; ``G_ema`` (the moving
average used for sampling and FID) takes no gradient step of its own and is not used.

Its own update: the non-saturating loss ``softplus(-D(G(z, c), c))`` (``StyleGAN2Loss``), and
Adam with lazy regularisation (``training_loop.py``): for G's regularisation interval 4,
``mb_ratio = 4 / 5``, so G steps with ``lr = 0.0025 * 0.8 = 0.002`` and
``betas = (0 ** 0.8, 0.99 ** 0.8) = (0, 0.992)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.gan_call import StyleGANCall
from ganrobust.runs.store import CheckpointError

#: StyleGAN2-ADA's defaults (train.py: G_opt_kwargs lr 0.0025, betas (0, 0.99); G_reg_interval 4)
BASE_LR, BASE_BETAS, G_REG_INTERVAL = 0.0025, (0.0, 0.99), 4
MB_RATIO = G_REG_INTERVAL / (G_REG_INTERVAL + 1)


def _snapshot(obj: Any) -> bool:
    """A StyleGAN2-ADA/StyleGAN3 snapshot dict: G and D modules with StyleGAN's attributes."""
    return (isinstance(obj, dict) and isinstance(obj.get("G"), nn.Module) and isinstance(obj.get("D"), nn.Module)
            and all(hasattr(obj["G"], a) for a in ("z_dim", "c_dim", "img_resolution", "img_channels")))


class StyleGAN(Family):
    name = "stylegan"
    title = "StyleGAN2-ADA / StyleGAN3 snapshot"
    update = Update(g_loss="ns", lr=BASE_LR * MB_RATIO, betas=(BASE_BETAS[0] ** MB_RATIO, BASE_BETAS[1] ** MB_RATIO),
                    why="StyleGAN2-ADA's Adam lr 0.0025, betas (0, 0.99) with lazy regularisation (G_reg_interval 4: "
                        "lr and betas scaled by 4/5); its non-saturating G loss")

    def recognises(self, found: Found) -> bool:
        return _snapshot(found.obj)

    def load(self, found: Found) -> LoadedGAN:
        obj, where = found.obj, found.where
        G, D = obj["G"], obj["D"]
        G.requires_grad_(True)  # snapshots are saved with requires_grad off; the replay steps G
        for name, module in (("G", G), ("D", D)):
            for key, value in module.state_dict().items():
                if value.is_floating_point() and not torch.isfinite(value).all():
                    raise CheckpointError(f"{where}: {name} weight {key!r} contains NaN or inf; audit an earlier snapshot")
        pipe = obj.get("augment_pipe") if isinstance(obj.get("augment_pipe"), nn.Module) else None
        p = getattr(pipe, "p", None)
        record = {"replayed": "G", "G_ema": "present, not used (it takes no gradient step of its own)"
                  if isinstance(obj.get("G_ema"), nn.Module) else "absent",
                  "augment_pipe": None if pipe is None else type(pipe).__name__,
                  "augment_p": None if p is None else float(p), "augment": "not used: D scores un-augmented images",
                  "c_dim": int(G.c_dim), "img_resolution": int(G.img_resolution), "img_channels": int(G.img_channels),
                  "training_set_kwargs": obj.get("training_set_kwargs")
                  if isinstance(obj.get("training_set_kwargs"), dict) else None}
        notes = ["StyleGAN snapshot: replaying the update of G (the trained network); G_ema is not used",
                 f"StyleGAN snapshots hold no optimizer state: the replay uses a fresh Adam with StyleGAN2-ADA's "
                 f"own G step (lr {self.update.lr:g}, betas {self.update.betas[0]:g},{self.update.betas[1]:.4g}; "  # type: ignore[index]
                 f"--g-lr/--g-betas override)"]
        return LoadedGAN(G=G, D=D, source="StyleGAN2-ADA/StyleGAN3 snapshot", latent_shape=(int(G.z_dim),),
                         notes=notes, augment_pipe=pipe, stylegan=record, call=StyleGANCall(c_dim=int(G.c_dim)))


FAMILY = StyleGAN()
