"""What a GAN family is: a recogniser of its files, a builder of its networks, its call adapter
and its own generator update (loss, optimizer settings), and what one loading step returns.

A family is one module holding one :class:`Family` subclass instance; the table in
:mod:`ganrobust.families` lists them in the order they are tried. The loading step
(:func:`ganrobust.runs.checkpoints.load_gan`) reads the user's files once into a :class:`Found`
and hands it to the first family whose :meth:`Family.recognises` says yes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn


@dataclass
class LoadedGAN:
    G: nn.Module
    D: nn.Module
    source: str                                  # which format was recognised
    latent_shape: tuple[int, ...]
    optimizer_g: dict[str, Any] | None = None    # G's optimizer state, for an exact replay
    optimizer_g_class: str | None = None
    score: dict[str, Any] = field(default_factory=dict)   # kind, tau, bn as recorded
    bounds: tuple[float, float] = (-1.0, 1.0)
    notes: list[str] = field(default_factory=list)
    train_config: dict[str, Any] | None = None   # the run manifest's train_config (ganrobust train)
    origins: dict[str, str] = field(default_factory=dict)  # score key -> "run manifest" | "checkpoint" | ...
    gan_call: dict[str, Any] | None = None      # how the run called G and D (conditional GANs), as recorded
    augment_pipe: nn.Module | None = None       # StyleGAN2-ADA's augmentation pipe (D trains on augmented images)
    stylegan: dict[str, Any] | None = None      # what a StyleGAN snapshot held and what the audit uses of it
    family: str = "generic"                     # the family that recognised the files (ganrobust.families)
    update: "Update | None" = None              # that family's own generator update (loss, optimizer settings)
    call: Any = None                            # the family's GanCall adapter, when it needs one


@dataclass(frozen=True)
class Update:
    """How a family trains G: its loss (the audit's names: ns, bce, hinge, wasserstein) and, for a
    replay without optimizer state, its Adam learning rate and betas. None: the audit's default.
    ``why`` says where the values come from (shown in the report)."""

    g_loss: str | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    why: str = ""


@dataclass
class Options:
    """What the user said about the networks (the CLI's loading options)."""

    arch: str | None = None
    generator_class: str | None = None
    generator_kwargs: dict[str, Any] | str | None = None
    discriminator_class: str | None = None
    discriminator_kwargs: dict[str, Any] | str | None = None
    d_output: str | None = None
    trust: bool = False
    latent_shape: tuple[int, ...] | None = None
    verify: bool = True
    config: str | None = None  # a family's own config file (StudioGAN's YAML)

    @property
    def classes(self) -> bool:
        return bool(self.generator_class or self.discriminator_class)


@dataclass
class Found:
    """The user's files, read once by the loading step: a checkpoint (``path``, ``obj``) or a pair
    of network files (``generator``/``discriminator``, read into ``g_raw``/``d_raw``). ``read``
    reads any other file the family needs (weights-only unless trusted) through the run store's
    reader; ``manifest`` is the run's, when the file lies in a ganrobust run directory."""

    options: Options
    read: Callable[[Path], Any]
    path: Path | None = None
    obj: Any = None
    generator: Path | None = None
    discriminator: Path | None = None
    g_raw: Any = None
    d_raw: Any = None
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pair(self) -> bool:
        return self.generator is not None and self.discriminator is not None

    @property
    def where(self) -> str:
        return f"{self.generator} + {self.discriminator}" if self.pair else str(self.path)

    def names(self) -> tuple[str, ...]:
        """The file names involved (for name-based recognisers)."""
        files = (self.generator, self.discriminator) if self.pair else (self.path,)
        return tuple(f.name for f in files if f is not None)


class Family:
    """One GAN codebase's conventions. Subclasses set ``name`` and ``update`` and implement
    :meth:`recognises` and :meth:`load`; :meth:`rebuild` rebuilds networks a run manifest recorded."""

    name = "generic"
    title = "state dicts of G and D"
    update = Update()

    def recognises(self, found: Found) -> bool:
        raise NotImplementedError

    def load(self, found: Found) -> LoadedGAN:
        raise NotImplementedError

    def rebuild(self, manifest: dict[str, Any]) -> tuple[nn.Module, nn.Module] | None:
        """Fresh G and D from a run manifest written around this family's loop; None: not this family's."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
