"""Whether a G and D pair takes the calls an adapter (:mod:`ganrobust.gan_call`) makes: the plain
adapter's calls checked against the forward signatures, any adapter's tried once on two samples,
so a mismatch is one line with the fix before an audit or a watch starts."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ganrobust.errors import InputError, param


def check_pair(G: nn.Module, D: nn.Module, call: Any, latent_shape: tuple[int, ...]) -> None:
    """ValueError (one line, with the fix) when G and D do not take the calls the adapter makes
    (conditions for an unconditional D, a missing condition, ...): their signatures are checked,
    and a conditional or custom adapter's calls are tried once on two samples."""
    from ganrobust.gan_call import GanCall  # gan_call re-exports this function

    gen = torch.Generator().manual_seed(0)
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    z, c = call.sample(2, latent_shape, gen, device)
    plain = type(call) is GanCall  # any other adapter makes its own calls: they are tried below
    for name, module in (("G", G), ("D", D)) if plain else ():
        if name == "D" and c is not None and not call.d_condition:
            continue  # an AC-GAN's D takes x alone
        takes = _positional_inputs(module)
        if takes is not None:
            if c is not None and takes < 2:
                raise InputError(f"{name}'s forward takes one input ({name}({'z' if name == 'G' else 'x'})) but the GAN "
                                 f"is called with conditions; drop {param('num_classes')} for an unconditional model")
            if c is None and takes >= 2 and _required_inputs(module) >= 2:
                raise InputError(f"{name}'s forward needs a condition ({name}(input, c)); pass {param('num_classes')} K "
                                 f"for a class-conditional model")
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
                         f"({type(err).__name__}: {text[0] if text else ''}); check {param('num_classes')} and the models' "
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
