"""How to build again what a run watched: a network's or a GAN adapter's class as an import path
(``module:qualname``) and its constructor arguments, as the run directory records them
(``manifest.json``: ``models.generator``, ``models.discriminator``, ``gan_call``).

A class path is the one that gives back the class itself: StyleGAN's ``persistent_class`` wraps
each network class in a local ``Decorator`` subclass that takes the original's place in its
module, so the path recorded is the module attribute (``training.networks:Generator``), found
through the class's bases. Constructor arguments come, in this order, from what the user passed
(``watch(..., generator_kwargs=...)``), a ``config`` dict the model keeps (ganrobust's models),
or the ``init_args``/``init_kwargs`` StyleGAN's persistent classes record. Only JSON values are
recorded; anything else is left out with the reason, and rebuilding then fails with one line
naming the option to pass."""

from __future__ import annotations

import json
import sys
from typing import Any

from torch import nn

from ganrobust.errors import InputError

#: what a class defined in the training script is recorded under; it cannot be imported later
SCRIPT = "__main__"


def _resolves(module: str, qualname: str, cls: type) -> bool:
    obj: Any = sys.modules.get(module)
    if obj is None or "<locals>" in qualname:
        return False
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj is cls


def class_path(cls: type) -> str:
    """``module:qualname`` that imports as ``cls`` (its own, or a base's whose name it took)."""
    candidates = [(cls.__module__, cls.__qualname__), (cls.__module__, cls.__name__)]
    candidates += [(b.__module__, b.__qualname__) for b in cls.__mro__[1:] if b is not object]
    for module, qualname in candidates:
        if _resolves(module, qualname, cls):
            return f"{module}:{qualname}"
    return f"{cls.__module__}:{cls.__qualname__}"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON (dict subclasses such as EasyDict become dicts); TypeError if not JSON."""
    return json.loads(json.dumps(value, allow_nan=False))


def model_recipe(module: nn.Module, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A network's record: ``class``, ``kwargs`` (None when unknown), where they came from, and
    its parameter count."""
    cls = type(module)
    found: list[tuple[str, Any, Any]] = []
    if kwargs is not None:
        found.append(("watch()", (), kwargs))
    config = getattr(module, "config", None)
    if isinstance(config, dict):
        found.append(("its config attribute", (), config))
    init_kwargs = getattr(module, "init_kwargs", None)
    if isinstance(init_kwargs, dict):
        found.append(("its init_kwargs attribute", tuple(getattr(module, "init_args", ()) or ()), init_kwargs))
    out: dict[str, Any] = {"class": class_path(cls), "kwargs": None}
    for source, args, values in found[:1]:
        try:
            out.update(kwargs=jsonable(dict(values)), kwargs_from=source)
            if args:
                out["args"] = jsonable(list(args))
        except (TypeError, ValueError) as err:
            out.update(kwargs=None, kwargs_from=f"{source}: not JSON ({str(err).splitlines()[0][:120]})")
    if not found:
        out["kwargs_from"] = "not recorded (no config or init_kwargs attribute; pass them to watch())"
    if out["class"].startswith(SCRIPT + ":"):
        script = getattr(sys.modules.get(SCRIPT), "__file__", None)
        out["script"] = script
    out["parameters"] = sum(p.numel() for p in module.parameters())
    return out


def rebuild(spec: str, kwargs: dict[str, Any] | None, *, what: str, option: str, args: list[Any] | None = None,
            script: str | None = None) -> Any:
    """``spec(*args, **kwargs)``; ValueError, one line naming what to import or ``option`` to pass,
    when it cannot be: a class from the training script, a module that does not import here,
    arguments that were not recorded, or a constructor that fails."""
    from ganrobust.models import import_object

    module, _, name = spec.partition(":")
    if module == SCRIPT:
        where = f" ({script})" if script else ""
        raise InputError(f"{what} {name} was defined in the training script{where}, which cannot be imported: move "
                         f"the class into a module and pass {option}")
    try:
        cls = import_object(spec)
    except ValueError as err:
        raise InputError(f"{what} {spec} does not import here ({str(err).split('(', 1)[-1].split(')')[0]}): put "
                         f"the code that defines it on PYTHONPATH (PYTHONPATH=/path/to/code ganrobust ...), or "
                         f"pass {option}") from None
    if kwargs is None:
        raise InputError(f"the run did not record the constructor arguments of {what} {spec}; pass {option}")
    try:
        return cls(*(args or ()), **kwargs)
    except Exception as err:  # a user's constructor can fail in any way
        text = str(err).strip().splitlines()
        raise InputError(f"{what} {spec}(**{kwargs}) failed ({type(err).__name__}: {text[0] if text else ''}); "
                         f"pass {option}") from None
