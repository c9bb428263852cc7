"""Copy a user's module without touching it and without failing on the tensors training leaves behind.

``copy.deepcopy`` refuses a tensor that is not a graph leaf ("Only Tensors created explicitly by
the user (graph leaves) support the deepcopy protocol"). After a forward with gradients,
``torch.nn.utils.spectral_norm`` and ``torch.nn.utils.weight_norm`` leave exactly such a tensor
as a plain attribute (``module.weight``, recomputed from ``weight_orig`` / ``weight_g, weight_v``
by a forward pre-hook on every call), so SNGAN, BigGAN and most modern discriminators could not
be copied after a training step. :func:`copy_module` pre-fills deepcopy's memo with detached
clones of every non-leaf tensor held by the module tree; everything else (parameters, buffers,
parametrizations, hooks, the module's own attributes) is deep-copied as ``copy.deepcopy`` does,
and the original module is only read.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def copy_module(module: M) -> M:
    """A deep copy of ``module`` (parameters, buffers, parametrizations, hooks, attributes).

    Non-leaf tensors (graph-attached results of the last forward, such as spectral norm's
    ``weight``) are copied detached; their values are the same. The original is unchanged."""
    memo: dict[int, Any] = {}
    with torch.no_grad():
        for sub in module.modules():
            for value in _tensors(vars(sub)):
                if not value.is_leaf and id(value) not in memo:
                    memo[id(value)] = value.detach().clone()
        return copy.deepcopy(module, memo)


def _tensors(attributes: dict[str, Any]) -> list[torch.Tensor]:
    """Tensors among a module's attributes, one container level deep (``_buffers``,
    ``_parameters``, plain attributes, lists, tuples and dicts of tensors)."""
    out: list[torch.Tensor] = []
    for value in attributes.values():
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, dict):
            out += [v for v in value.values() if isinstance(v, torch.Tensor)]
        elif isinstance(value, (list, tuple)):
            out += [v for v in value if isinstance(v, torch.Tensor)]
    return out
