"""ajbrock/BigGAN-PyTorch: ``utils.save_weights`` writes ``weights/RUN/G.pth``, ``D.pth`` (state dicts),
``G_optim.pth`` (G's Adam state) and ``state_dict.pth`` (``{"itr", ..., "config"}``: the run's
argparse config, from which ``train.py`` builds ``model.Generator(**config)``). The networks are
rebuilt the same way, from that config, with the ``BigGAN`` module (``config["model"]``) imported
from the user's ``PYTHONPATH``. ``config`` holds its activation modules (``G_activation``), so
``state_dict.pth`` only loads with ``--trust-checkpoint``.

Its own update: the hinge loss (``losses.loss_hinge_gen``, ``-D(G(z, y), y)``) and G's optimizer
state from ``G_optim.pth``; G takes the embedded class, ``G(z, G.shared(y))``
(:class:`BigGANCall`)."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC, State
from ganrobust.gan_call import BigGANCall  # the adapter, with the hook's mapping back to labels
from ganrobust.models import import_object
from ganrobust.optimizers import first_line
from ganrobust.runs.store import CheckpointError
from ganrobust.errors import marked, param

NAME = re.compile(r"^(G|D)(_[A-Za-z0-9]+)?\.pth$")


def _state_file(found: Found) -> Any:
    assert found.generator is not None
    suffix = found.generator.stem[1:]  # "G_best0" -> "_best0"
    return found.generator.with_name(f"state_dict{suffix}.pth")


class BigGAN(Family):
    name = "biggan"
    title = "BigGAN-PyTorch (weights/RUN/G.pth + D.pth + state_dict.pth)"
    update = Update(g_loss="hinge", why="BigGAN-PyTorch's losses.loss_hinge_gen")

    def recognises(self, found: Found) -> bool:
        return found.pair and all(NAME.match(n) for n in found.names()) and _state_file(found).is_file()

    def load(self, found: Found) -> LoadedGAN:
        path = _state_file(found)
        try:
            state = found.read(path)
        except CheckpointError as err:
            raise CheckpointError(f"{path} (BigGAN-PyTorch's run state, whose config builds G and D): {marked(err)}") from None
        config = state.get("config") if isinstance(state, dict) else None
        if not isinstance(config, dict):
            raise CheckpointError(f"{path} holds no 'config' dict; pass {param('generator_class')}/{param('generator_kwargs')}")
        module = str(config.get("model") or "BigGAN")
        kwargs = {**config, "skip_init": True, "no_optim": True}

        def builder(_g: State | None, _d: State | None) -> tuple[nn.Module, nn.Module]:
            try:
                G = import_object(f"{module}:Generator")(**kwargs)
                D = import_object(f"{module}:Discriminator")(**kwargs)
            except ValueError as err:
                raise CheckpointError(f"{marked(err)} (BigGAN-PyTorch's repository root, which holds {module}.py, on "
                                      f"PYTHONPATH)") from None
            except Exception as err:
                raise CheckpointError(f"{module}.Generator(**config) from {path} failed: {first_line(err)}") from None
            return G, D

        optim = found.generator.with_name(found.generator.name.replace("G", "G_optim", 1))  # type: ignore[union-attr]
        opt_state = found.read(optim) if optim.is_file() else None
        loaded = GENERIC.load_pair(found, builder=builder, source="BigGAN-PyTorch weights",
                                   optimizer_g=opt_state if isinstance(opt_state, dict) else None,
                                   optimizer_g_class="Adam" if isinstance(opt_state, dict) else None)
        loaded.notes.append(f"built {module}.Generator/Discriminator(**config) from {path.name}" +
                            (f"; G's optimizer state from {optim.name}" if opt_state is not None else ""))
        if hasattr(loaded.G, "dim_z"):
            loaded.latent_shape = (int(loaded.G.dim_z),)
        loaded.call = BigGANCall(int(config.get("n_classes") or 1))
        return loaded


FAMILY = BigGAN()
