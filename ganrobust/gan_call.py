"""One way to call a GAN: draw ``(z, c)`` for n samples, call G on them, call D on ``(x, c)``.

Every part that runs a user's G or D (the watch hook, audit, compare, the reference trainer,
:class:`~ganrobust.robust.RobustDLoss`) goes through one of these adapters, so a conditional
model plugs in once:

=====================  ==========================  ==================  ==================
adapter                 latents and conditions      G                   D
=====================  ==========================  ==================  ==================
``GanCall()``           ``z ~ N(0, I)``, no ``c``   ``G(z)``            ``D(x)``
``GanCall(10)``         ``c ~ U{0..9}`` (labels)    ``G(z, c)``         ``D(x, c)``
``StyleGANCall(c_dim)`` ``c`` one-hot; none when   ``G(z, c)``, raw    ``D(img, c)``
                        ``c_dim == 0`` (``(N, 0)``
                        passed to G and D)
``BigGANCall(10)``      ``c ~ U{0..9}`` (labels)    ``G(z, G.shared(c))`` ``D(x, c)``
``GanCall(10, False)``  ``c ~ U{0..9}`` (labels)    ``G(z, c)``         ``D(x)`` (AC-GAN)
=====================  ==========================  ==================  ==================

Draws come from the seeded ``torch.Generator`` passed in, ``z`` first and then ``c``, so the
default adapter draws exactly what the code before adapters drew (same numbers under a seed).
Anything else (keyword conditions, truncation, a mapping network called separately) is a
subclass overriding :meth:`GanCall.generate` / :meth:`GanCall.score_input`; a training loop that
feeds G something else than ``(z, c)`` (BigGAN's embedded class) or enters G elsewhere
(StyleGAN's ``G.mapping``) also overrides :meth:`GanCall.latent_entries` / :meth:`GanCall.latents_of`,
which tell the watch hook where a step's latents are seen. A run records its adapter as an import
path and constructor arguments (:meth:`GanCall.record`), and :func:`gan_call_from_record` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ganrobust.errors import InputError, param
from ganrobust.gan_check import check_pair  # noqa: F401  (its home before the split; callers import it here)
from ganrobust.recipes import class_path, jsonable, rebuild


@dataclass(frozen=True)
class GanCall:
    """G(z) / D(x), or with ``num_classes=K`` categorical labels ``c`` passed as G(z, c), D(x, c)
    (``d_condition=False``: D(x), as an AC-GAN's D, which predicts the class instead)."""

    num_classes: int | None = None
    d_condition: bool = True

    #: True where D sees G's output unclamped (StyleGAN): attacks then keep no box (Bounds.box)
    raw_output: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 1):
            raise InputError(f"expected num_classes >= 1 (the number of class labels), got {self.num_classes!r}")

    # -- what the adapter says about conditions -----------------------------------------
    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def classes(self) -> int | None:
        """How many categories a condition falls in (per-class breakdowns), or None."""
        return self.num_classes

    @property
    def binds(self) -> bool:
        """Whether D must be called through this adapter: conditional, or a subclass with its own
        calls (the plain unconditional adapter calls D(x), which a Scorer does by itself)."""
        return self.conditional or type(self) is not GanCall

    def describe(self) -> dict[str, Any]:
        return {"adapter": type(self).__name__, "num_classes": self.num_classes,
                "condition": "class label" if self.conditional else None,
                **({} if self.d_condition else {"d_condition": False})}

    def record(self) -> dict[str, Any]:
        """What a run records (manifest ``gan_call``): :meth:`describe`, the class as an import path
        (``class``) and its constructor arguments (``kwargs``: the dataclass fields, or an
        ``init_kwargs`` dict an adapter with its own constructor defines), which
        :func:`gan_call_from_record` builds it from."""
        kwargs = getattr(self, "init_kwargs", None)
        if not isinstance(kwargs, dict):
            kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        try:
            return {**self.describe(), "class": class_path(type(self)), "kwargs": jsonable(kwargs)}
        except (TypeError, ValueError):  # rebuilding it then asks for --gan-call
            return {**self.describe(), "class": class_path(type(self)), "kwargs": None,
                    "kwargs_from": "not recorded: its arguments are not JSON values"}

    # -- where the training loop's latents are seen (the watch hook) ----------------------
    def latent_entries(self, G: nn.Module) -> tuple[nn.Module, ...]:
        """The modules whose forward receives the latents in a training loop, the first preferred
        when several were called for one step: G itself."""
        return (G,)

    def latents_of(self, G: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(z, c)`` from the arguments of a call of :meth:`latent_entry` (None: not a latent batch).
        Default: ``G(z)``, or ``G(z, c)`` for a conditional adapter (``c`` None when not passed)."""
        z = args[0] if args else None
        if not isinstance(z, torch.Tensor):
            return None
        c = args[1] if len(args) > 1 else None
        return z, (c if self.conditional and isinstance(c, torch.Tensor) else None)

    def export(self, x: torch.Tensor) -> torch.Tensor:
        """Samples as images leave the tool (``samples.npz``, quality scores); D and the replay see
        :meth:`generate`'s output itself."""
        return x

    # -- the three calls -----------------------------------------------------------------
    def sample(self, n: int, latent_shape: tuple[int, ...], generator: torch.Generator,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(z, c)`` for n samples: ``z`` (n, *latent_shape), ``c`` (n,) labels or None."""
        z = torch.randn((n,) + tuple(latent_shape), generator=generator).to(device=device, dtype=dtype)
        if not self.conditional:
            return z, None
        c = torch.randint(0, self.num_classes, (n,), generator=generator).to(device)  # type: ignore[arg-type]
        return z, c

    def generate(self, G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        self.check_condition(c, z.shape[0])
        return G(z) if c is None else G(z, c)

    def score_input(self, D: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        """D's raw output on ``x`` with condition ``c`` (a Scorer reduces it to one score)."""
        return D(x) if c is None or not self.d_condition else D(x, c)

    # -- conditions ----------------------------------------------------------------------
    def labels(self, c: torch.Tensor | None) -> torch.Tensor | None:
        """The class index of each condition (n,), for per-class breakdowns; None if not categorical."""
        if c is None or not self.conditional:
            return None
        return c.long()

    def condition_of_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Conditions for real samples with integer labels ``y`` (n,)."""
        return y.long()

    def check_condition(self, c: torch.Tensor | None, n: int) -> None:
        """ValueError (one line, with the fix) for a condition that does not fit this adapter."""
        if c is None:
            if self.conditional:
                raise InputError(f"this GAN is conditional ({self.num_classes} classes) but no condition was given")
            return
        if not self.conditional:
            raise InputError(f"got conditions of shape {tuple(c.shape)} for an unconditional GAN; pass "
                             f"{param('num_classes')} for a conditional one")
        if c.shape != (n,) or c.is_floating_point():
            raise InputError(f"expected class labels c of shape ({n},) (integers), got {tuple(c.shape)} {c.dtype}")
        if n and (int(c.min()) < 0 or int(c.max()) >= self.num_classes):  # type: ignore[operator]
            raise InputError(f"expected class labels in 0..{self.num_classes - 1}, got {int(c.min())}..{int(c.max())}")  # type: ignore[operator]


@dataclass(frozen=True)
class StyleGANCall(GanCall):
    """StyleGAN2-ADA / StyleGAN3: ``G(z, c)``, ``D(img, c)``; ``c`` one-hot of width ``c_dim``
    (``num_classes`` is ``c_dim`` when conditional). ``c_dim == 0`` is an unconditional model:
    no condition is drawn, stored or needed for real samples; G and D get ``c`` of shape
    ``(N, 0)``, as StyleGAN's code passes it. G's output is used raw, as StyleGAN's loss does;
    only exported images are clamped to [-1, 1]. In a training loop latents enter at
    ``G.mapping(z, c)`` (StyleGAN's loss calls ``G.mapping`` and ``G.synthesis``, not ``G``)."""

    c_dim: int = 0

    #: D sees G's output unclamped, so attacks on G's samples keep no [-1, 1] box (Bounds.box)
    raw_output: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.c_dim < 0:
            raise InputError(f"expected c_dim >= 0, got {self.c_dim}")
        object.__setattr__(self, "num_classes", self.c_dim or None)

    @property
    def conditional(self) -> bool:
        return self.c_dim > 0

    def describe(self) -> dict[str, Any]:
        return {"adapter": "StyleGANCall", "c_dim": self.c_dim,
                "condition": "one-hot class" if self.c_dim else "none (c of shape [N, 0])",
                "output": "G(z, c) raw (StyleGAN's loss); exported images clamped to [-1, 1]"}

    def sample(self, n: int, latent_shape: tuple[int, ...], generator: torch.Generator,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn((n,) + tuple(latent_shape), generator=generator).to(device=device, dtype=dtype)
        if not self.c_dim:
            return z, None
        y = torch.randint(0, self.c_dim, (n,), generator=generator)
        return z, self.condition_of_labels(y).to(device=device, dtype=dtype)

    def _c(self, c: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """The condition StyleGAN's networks take: ``c``, or ``(N, 0)`` for an unconditional model."""
        self.check_condition(c, like.shape[0])
        return like.new_zeros((like.shape[0], 0)) if c is None else c

    def generate(self, G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return G(z, self._c(c, z))

    def score_input(self, D: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        return D(x, self._c(c, x))

    def export(self, x: torch.Tensor) -> torch.Tensor:
        """Clamped to [-1, 1] as StyleGAN's image export does (its output overshoots the range)."""
        return x.clamp(-1.0, 1.0)

    def latent_entries(self, G: nn.Module) -> tuple[nn.Module, ...]:
        """``G(z, c)`` when the loop calls G, else ``G.mapping(z, c)``, as StyleGAN's own loss calls it."""
        mapping = getattr(G, "mapping", None)
        return (G, mapping) if isinstance(mapping, nn.Module) else (G,)

    def latents_of(self, G: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``mapping(z, c, ...)`` (or ``G(z, c, ...)``): z and, when conditional, c."""
        z = args[0] if args else kwargs.get("z")
        c = args[1] if len(args) > 1 else kwargs.get("c")
        if not isinstance(z, torch.Tensor):
            return None
        return z, (c if self.c_dim and isinstance(c, torch.Tensor) else None)

    def labels(self, c: torch.Tensor | None) -> torch.Tensor | None:
        return None if c is None or not self.c_dim else c.argmax(dim=1).long()

    def condition_of_labels(self, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(y.long(), self.c_dim).float() if self.c_dim else \
            torch.zeros((y.shape[0], 0))

    def check_condition(self, c: torch.Tensor | None, n: int) -> None:
        if (c is None and not self.c_dim) or (c is not None and c.shape == (n, self.c_dim)):
            return
        got = None if c is None else tuple(c.shape)
        raise InputError(f"expected StyleGAN conditions c of shape ({n}, {self.c_dim}) (one-hot, c_dim="
                         f"{self.c_dim}), got {got}")


@dataclass(frozen=True)
class BigGANCall(GanCall):
    """BigGAN-PyTorch: its training loop calls ``G(z, G.shared(y))`` — G takes the class embedded
    by its shared embedding, D takes the label (``D(x, y)``). The watch hook sees the embedding
    and maps it back to the label (an ``nn.Embedding`` row matches exactly); when ``G.shared`` is
    not an embedding (BigGAN-PyTorch's identity when classes are not shared) it passes ``y`` on."""

    def generate(self, G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        self.check_condition(c, z.shape[0])
        return G(z, G.shared(c))

    def latents_of(self, G: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        seen = super().latents_of(G, args, kwargs)
        if seen is None or seen[1] is None:
            return seen
        z, embedded = seen
        if not embedded.is_floating_point():
            return z, embedded  # a label passed through an identity "shared"
        table = getattr(getattr(G, "shared", None), "weight", None)
        if not isinstance(table, torch.Tensor) or embedded.dim() != 2 or embedded.shape[1] != table.shape[1]:
            return z, None  # cannot tell the labels: the step's own batch is not measured
        with torch.no_grad():
            distance, y = torch.cdist(embedded.detach().float(), table.detach().float(),
                                      compute_mode="donot_use_mm_for_euclid_dist").min(dim=1)  # exact for equal rows
        return z, (y if bool((distance <= 1e-6 * (1 + table.abs().max())).all()) else None)


DEFAULT = GanCall()


class AugmentedDiscriminator(nn.Module):
    """``D(augment_pipe(x), c)``: StyleGAN2-ADA's D as it trains, behind its augmentation pipe
    (random at ``p > 0``: scores then vary between calls, which the audit's diagnostics report)."""

    def __init__(self, D: nn.Module, augment_pipe: nn.Module) -> None:
        super().__init__()
        self.D, self.augment_pipe = D, augment_pipe
        for attr in ("c_dim", "img_resolution", "img_channels"):
            if hasattr(D, attr):
                setattr(self, attr, getattr(D, attr))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> Any:
        return self.D(self.augment_pipe(x), c)


def gan_call_from_record(record: dict[str, Any] | None) -> GanCall:
    """The adapter a run recorded (its manifest's ``gan_call``, :meth:`GanCall.record`), rebuilt
    from its import path and constructor arguments; ValueError (one line, naming what to import or
    pass) when that class does not import here or does not build. Runs written before adapters were
    recorded this way name the adapter only (``StyleGANCall``, else the plain labels)."""
    if not record:
        return DEFAULT
    spec = record.get("class")
    if spec is None:
        if record.get("adapter") == "StyleGANCall":
            return StyleGANCall(c_dim=int(record.get("c_dim") or 0))
        return GanCall(record.get("num_classes"), bool(record.get("d_condition", True)))
    call = rebuild(spec, record.get("kwargs"), what="the GAN adapter", option=f"{param('gan_call')} {spec}")
    if not isinstance(call, GanCall):
        raise InputError(f"the run's GAN adapter {spec} is not a ganrobust.gan_call.GanCall (got "
                         f"{type(call).__name__}); pass {param('gan_call')} pkg.mod:Class")
    return call


def gan_call_for(G: nn.Module, D: nn.Module, num_classes: int | None = None, *, d_condition: bool = True,
                 adapter: str | None = None) -> GanCall:
    """The adapter a pair asks for: ``adapter`` (``pkg.mod:Class``, a GanCall subclass built with
    ``num_classes``), else StyleGAN's attributes (``z_dim``, ``c_dim``, ``img_resolution``) pick
    :class:`StyleGANCall`, else ``num_classes`` picks labels or the plain G(z)/D(x)."""
    if adapter is not None:
        return _import_adapter(adapter, num_classes)
    if all(hasattr(G, a) for a in ("z_dim", "c_dim", "img_resolution")):
        c_dim = int(G.c_dim)
        if num_classes is not None and num_classes != c_dim:
            raise InputError(f"{param('num_classes')} {num_classes} does not fit this StyleGAN generator (c_dim={c_dim}); "
                             f"drop {param('num_classes')}")
        return StyleGANCall(c_dim=c_dim)
    return GanCall(num_classes, d_condition)


def _import_adapter(spec: str, num_classes: int | None) -> GanCall:
    from ganrobust.models import import_object

    obj = import_object(spec)
    if isinstance(obj, GanCall):
        return obj
    if not (isinstance(obj, type) and issubclass(obj, GanCall)):
        raise InputError(f"{spec!r} is not a ganrobust.gan_call.GanCall subclass or instance")
    return obj(num_classes) if num_classes is not None else obj()
