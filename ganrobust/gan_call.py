"""One way to call a GAN: draw ``(z, c)`` for n samples, call G on them, call D on ``(x, c)``.

Every part that runs a user's G or D (the watch hook, audit, compare, the reference trainer,
:class:`~ganrobust.robust.RobustDLoss`) goes through one of these adapters, so a conditional
model plugs in once:

=====================  ==========================  ==================  ==================
adapter                 latents and conditions      G                   D
=====================  ==========================  ==================  ==================
``GanCall()``           ``z ~ N(0, I)``, no ``c``   ``G(z)``            ``D(x)``
``GanCall(10)``         ``c ~ U{0..9}`` (labels)    ``G(z, c)``         ``D(x, c)``
``StyleGANCall(c_dim)`` ``c`` one-hot, ``(N, 0)``   ``G(z, c)``         ``D(img, c)``
                        when ``c_dim == 0``
``GanCall(10, False)``  ``c ~ U{0..9}`` (labels)    ``G(z, c)``         ``D(x)`` (AC-GAN)
=====================  ==========================  ==================  ==================

Draws come from the seeded ``torch.Generator`` passed in, ``z`` first and then ``c``, so the
default adapter draws exactly what the code before adapters drew (same numbers under a seed).
Anything else (keyword conditions, truncation, a mapping network called separately) is a
subclass overriding :meth:`GanCall.generate` / :meth:`GanCall.score_input`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganrobust.errors import InputError


@dataclass(frozen=True)
class GanCall:
    """G(z) / D(x), or with ``num_classes=K`` categorical labels ``c`` passed as G(z, c), D(x, c)
    (``d_condition=False``: D(x), as an AC-GAN's D, which predicts the class instead)."""

    num_classes: int | None = None
    d_condition: bool = True

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
            raise InputError(f"got conditions of shape {tuple(c.shape)} for an unconditional GAN; pass num_classes= "
                             f"(--num-classes) for a conditional one")
        if c.shape != (n,) or c.is_floating_point():
            raise InputError(f"expected class labels c of shape ({n},) (integers), got {tuple(c.shape)} {c.dtype}")
        if n and (int(c.min()) < 0 or int(c.max()) >= self.num_classes):  # type: ignore[operator]
            raise InputError(f"expected class labels in 0..{self.num_classes - 1}, got {int(c.min())}..{int(c.max())}")  # type: ignore[operator]


@dataclass(frozen=True)
class StyleGANCall(GanCall):
    """StyleGAN2-ADA / StyleGAN3: ``G(z, c)``, ``D(img, c)``; ``c`` one-hot of width ``c_dim``
    (shape ``(N, 0)`` when ``c_dim == 0``, an unconditional model). ``num_classes`` is ``c_dim``
    when conditional."""

    c_dim: int = 0

    def __post_init__(self) -> None:
        if self.c_dim < 0:
            raise InputError(f"expected c_dim >= 0, got {self.c_dim}")
        object.__setattr__(self, "num_classes", self.c_dim or None)

    @property
    def conditional(self) -> bool:
        return True  # c is always passed, (N, 0) when unconditional

    @property
    def classes(self) -> int | None:
        return self.c_dim or None

    def describe(self) -> dict[str, Any]:
        return {"adapter": "StyleGANCall", "c_dim": self.c_dim,
                "condition": "one-hot class" if self.c_dim else "none (c of shape [N, 0])",
                "output": "G(z, c) clamped to [-1, 1]"}

    def sample(self, n: int, latent_shape: tuple[int, ...], generator: torch.Generator,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn((n,) + tuple(latent_shape), generator=generator).to(device=device, dtype=dtype)
        if not self.c_dim:
            return z, torch.zeros((n, 0), device=device, dtype=dtype)
        y = torch.randint(0, self.c_dim, (n,), generator=generator)
        return z, self.condition_of_labels(y).to(device=device, dtype=dtype)

    def generate(self, G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """``G(z, c)`` clamped to [-1, 1]: StyleGAN's output is not squashed and overshoots the
        range slightly; its own image export clamps the same way."""
        self.check_condition(c, z.shape[0])
        return G(z, c).clamp(-1.0, 1.0)

    def score_input(self, D: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> Any:
        return D(x, c)

    def labels(self, c: torch.Tensor | None) -> torch.Tensor | None:
        return None if c is None or not self.c_dim else c.argmax(dim=1).long()

    def condition_of_labels(self, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(y.long(), self.c_dim).float() if self.c_dim else \
            torch.zeros((y.shape[0], 0))

    def check_condition(self, c: torch.Tensor | None, n: int) -> None:
        if c is None or c.shape != (n, self.c_dim):
            got = None if c is None else tuple(c.shape)
            raise InputError(f"expected StyleGAN conditions c of shape ({n}, {self.c_dim}) (one-hot, c_dim="
                             f"{self.c_dim}), got {got}")


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
    """The adapter a run recorded (its manifest's ``gan_call``, :meth:`GanCall.describe`)."""
    if not record:
        return DEFAULT
    if record.get("adapter") == "StyleGANCall":
        return StyleGANCall(c_dim=int(record.get("c_dim") or 0))
    return GanCall(record.get("num_classes"), bool(record.get("d_condition", True)))


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
            raise InputError(f"--num-classes {num_classes} does not fit this StyleGAN generator (c_dim={c_dim}); "
                             f"drop --num-classes")
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


def check_pair(G: nn.Module, D: nn.Module, call: GanCall, latent_shape: tuple[int, ...]) -> None:
    """ValueError (one line, with the fix) when G and D do not take the calls the adapter makes
    (conditions for an unconditional D, a missing condition, ...): their signatures are checked,
    and a conditional or custom adapter's calls are tried once on two samples."""
    gen = torch.Generator().manual_seed(0)
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    z, c = call.sample(2, latent_shape, gen, device)
    for name, module in (("G", G), ("D", D)):
        if name == "D" and c is not None and not call.d_condition:
            continue  # an AC-GAN's D takes x alone
        takes = _positional_inputs(module)
        if takes is not None:
            if c is not None and takes < 2:
                raise InputError(f"{name}'s forward takes one input ({name}({'z' if name == 'G' else 'x'})) but the GAN "
                                 f"is called with conditions; drop --num-classes / num_classes= for an unconditional model")
            if c is None and takes >= 2 and _required_inputs(module) >= 2:
                raise InputError(f"{name}'s forward needs a condition ({name}(input, c)); pass --num-classes K / "
                                 f"num_classes=K for a class-conditional model")
    if not call.binds:
        return  # plain G(z)/D(x): a failing call is reported where the audit runs it
    was = (G.training, D.training)
    try:
        G.eval()
        D.eval()
        with torch.no_grad():
            x = call.generate(G, z, c)
            call.score_input(D, x, c)
    except (TypeError, IndexError, RuntimeError) as err:
        text = str(err).strip().splitlines()
        raise InputError(f"calling the GAN as {type(call).__name__}{call.describe()} failed "
                         f"({type(err).__name__}: {text[0] if text else ''}); check --num-classes and the models' "
                         f"call signatures") from None
    finally:
        G.train(was[0])
        D.train(was[1])


def _positional_inputs(module: nn.Module) -> int | None:
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _required_inputs(module: nn.Module) -> int:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)
