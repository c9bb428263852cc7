"""POSTECH-CVLab/PyTorch-StudioGAN: ``WORKER.save`` writes ``checkpoints/RUN_NAME/model=G-{best,current}-
weights-step=N.pth`` (``{"state_dict", "optimizer"}``) and ``model=D-...`` (also ``run_name``, ``step``,
...). StudioGAN's constructors take its config objects (``Generator(..., MODULES=..., MODEL=...)``),
so the networks are built the way StudioGAN builds them: its YAML config read by its own loader
(``config.Configurations``) and ``models.model.load_generator_discriminator``, imported from the
user's ``PYTHONPATH`` (StudioGAN's ``src/``). The YAML is ``--config FILE``, else found from the run
name ``{DATA}-{framework}-train-{time}`` as ``src/configs/{DATA}/{framework}.yaml``.

Its own update: the config's ``LOSS.adv_loss`` (vanilla and logistic are the non-saturating
``softplus(-D)``, hinge and wasserstein ``-D``), G's optimizer state from its file. G is called
``G(z, y)``, D as ``D(x, y)["adv_output"]`` (:class:`StudioGANCall`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import FAMILY as GENERIC, State
from ganrobust.gan_call import GanCall
from ganrobust.models import import_object
from ganrobust.optimizers import first_line
from ganrobust.runs.store import CheckpointError
from ganrobust.errors import marked, param

NAME = re.compile(r"^model=(G|D)-(best|current)-weights-step=\d+\.pth$")
#: main.py's RUN_NAME_FORMAT "{data_name}-{framework}-{phase}-{timestamp}"; framework = the YAML's name
RUN_NAME = re.compile(r"^(?P<data>[^-]+)-(?P<framework>.+)-train-")
#: LOSS.adv_loss -> the audit's name of the same generator loss (StudioGAN's utils/losses.py)
LOSSES = {"vanilla": "ns", "logistic": "ns", "hinge": "hinge", "wasserstein": "wasserstein"}


class StudioGANCall(GanCall):
    """StudioGAN: ``G(z, y)``, ``D(x, y)`` returning a dict whose ``adv_output`` is the realness logit."""

    def score_input(self, D: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        return D(x, c)["adv_output"]


def _config_file(found: Found) -> Path:
    given = found.options.config
    if given:
        if not Path(given).is_file():
            raise CheckpointError(f"{param('config')} {given} does not exist")
        return Path(given)
    run_name = found.d_raw.get("run_name") if isinstance(found.d_raw, dict) else None
    loader = sys.modules[_import("config:Configurations").__module__]
    named = RUN_NAME.match(str(run_name or ""))  # framework names have dashes of their own (BigGAN-DiffAug)
    if named and getattr(loader, "__file__", None):
        candidate = Path(loader.__file__).parent / "configs" / named["data"] / f"{named['framework']}.yaml"
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{found.where}: StudioGAN builds its networks from the run's YAML config (run {run_name!r}); "
                          f"pass {param('config')} path/to/CONFIG.yaml")


def _import(spec: str) -> Any:
    try:
        return import_object(spec)
    except ValueError as err:
        raise CheckpointError(f"{marked(err)} (StudioGAN's src/ folder, which holds config.py and models/, on PYTHONPATH)") from None


def configurations(path: Path) -> Any:
    """StudioGAN's config objects for a YAML file, read by StudioGAN's own loader. ``RUN`` (filled
    by main.py's command line) gets the one field the builder reads, ``mixed_precision``, as
    main.py's default (off: the audit scores in float32)."""
    try:
        cfgs = _import("config:Configurations")(str(path))
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"StudioGAN's config.Configurations({path}) failed: {first_line(err)}") from None
    if not hasattr(cfgs.RUN, "mixed_precision"):
        cfgs.RUN.mixed_precision = False
    return cfgs


class StudioGAN(Family):
    name = "studiogan"
    title = "PyTorch-StudioGAN (model=G-*-weights-step=N.pth + model=D-...)"
    update = Update(g_loss="ns", why="StudioGAN's default LOSS.adv_loss 'vanilla'")

    def recognises(self, found: Found) -> bool:
        return found.pair and all(NAME.match(n) for n in found.names())

    def load(self, found: Found) -> LoadedGAN:
        used: dict[str, Any] = {}

        def builder(_g: State | None, _d: State | None) -> tuple[nn.Module, nn.Module]:
            path = _config_file(found)
            cfgs = configurations(path)
            load = _import("models.model:load_generator_discriminator")
            try:
                built = load(DATA=cfgs.DATA, OPTIMIZATION=cfgs.OPTIMIZATION, MODEL=cfgs.MODEL, STYLEGAN=cfgs.STYLEGAN,
                             MODULES=cfgs.MODULES, RUN=cfgs.RUN, device="cpu", logger=None)
            except Exception as err:
                raise CheckpointError(f"StudioGAN's load_generator_discriminator for {path} failed: "
                                      f"{first_line(err)}") from None
            used.update(path=path, cfgs=cfgs)
            return built[0], built[3]  # Gen, Gen_mapping, Gen_synthesis, Dis, ...

        loaded = GENERIC.load_pair(found, builder=builder, source="StudioGAN checkpoints")
        if not used:  # built from the user's classes or the tensor shapes
            return loaded
        cfgs = used["cfgs"]
        loaded.notes.append(f"built StudioGAN's networks from {used['path']} (its config.Configurations and "
                            f"models.model.load_generator_discriminator)")
        loss = str(getattr(cfgs.LOSS, "adv_loss", ""))
        if loss in LOSSES:
            loaded.update = Update(g_loss=LOSSES[loss], why=f"the StudioGAN config's LOSS.adv_loss {loss!r}")
        else:
            loaded.notes.append(f"StudioGAN's LOSS.adv_loss {loss!r} has no generator loss in ganrobust: "
                                "pass --g-loss")
        loaded.latent_shape = (int(cfgs.MODEL.z_dim),)
        loaded.call = StudioGANCall(int(cfgs.DATA.num_classes))
        return loaded


FAMILY = StudioGAN()
