"""G's optimizer, replayed: which ``torch.optim`` class a saved state belongs to, and a copy of
it that takes the next step exactly as training would.

A param group holds every hyperparameter of its class, so its key set names the class; where
that is ambiguous, or a class cannot take one plain step on G's dense gradients, the error
names the option that decides (``--g-optimizer``, ``--fresh-optimizer``).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch
from torch import nn

from ganrobust.config import AuditConfig
from ganrobust.errors import InputError, param

#: every optimizer class torch.optim ships, by name: what ``--g-optimizer`` accepts
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    name: cls for name, cls in sorted(vars(torch.optim).items())
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer}
#: optimizers whose ``step()`` cannot be replayed as one plain step on G's dense gradients
NOT_REPLAYABLE = {"LBFGS": "its step needs a closure that re-evaluates the loss",
                  "SparseAdam": "it needs sparse gradients and G's are dense"}
#: keys a scheduler or named parameters add to a param group; they say nothing about the class
_GROUP_EXTRAS = frozenset({"params", "param_names", "initial_lr"})


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class called ``name`` (``--g-optimizer`` or a checkpoint's record)."""
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise InputError(f"expected a torch.optim optimizer class for G ({', '.join(OPTIMIZERS)}), got {name!r}; "
                         f"pass {param('g_optimizer')} NAME with the class whose step G's optimizer takes, or {param('fresh_optimizer')}")
    if name in NOT_REPLAYABLE:
        raise InputError(f"G's optimizer {name} cannot be replayed: {NOT_REPLAYABLE[name]}; pass {param('fresh_optimizer')} "
                         f"(a fresh Adam) or {param('g_optimizer')} NAME for another class")
    return cls


@functools.lru_cache(maxsize=None)
def _group_keys(cls: type[torch.optim.Optimizer]) -> frozenset[str] | None:
    """The hyperparameter names a param group of ``cls`` holds (None if it cannot be built on a 2-D tensor)."""
    try:
        opt = cls([nn.Parameter(torch.zeros(2, 2))])
    except Exception:  # an optimizer with required arguments or unusual parameter needs
        return None
    return frozenset(opt.param_groups[0]) - _GROUP_EXTRAS


def infer_optimizer_class(state: dict[str, Any]) -> str:
    """The class of a foreign optimizer state, only where it is unambiguous.

    A param group holds every hyperparameter of its class, so its key set names the class; where
    several classes share a key set (Adam and AdamW), they count as one only if they share one
    ``step`` (AdamW is Adam with ``decoupled_weight_decay``, a flag the loaded group carries).
    """
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not groups or not isinstance(groups[0], dict):
        raise InputError("G's optimizer state has no param_groups, so its class is unknown; "
                         f"pass {param('g_optimizer')} NAME or {param('fresh_optimizer')}")
    keys = frozenset(groups[0]) - _GROUP_EXTRAS
    matches = [name for name, cls in OPTIMIZERS.items() if _group_keys(cls) == keys]
    steps = {OPTIMIZERS[name].step for name in matches}
    if len(steps) == 1:
        return next(name for name in matches if "step" in vars(OPTIMIZERS[name]))
    if matches:
        raise InputError(f"G's optimizer state fits {' and '.join(matches)} alike, which step differently; "
                         f"pass {param('g_optimizer')} NAME")
    raise InputError(f"G's optimizer state (hyperparameters {sorted(keys)}) matches no torch.optim class of torch "
                     f"{torch.__version__}; pass {param('g_optimizer')} NAME or {param('fresh_optimizer')}")


def make_optimizer(G: nn.Module, state: dict[str, Any] | None, cls_name: str | None, cfg: AuditConfig
                   ) -> torch.optim.Optimizer:
    """G's optimizer: the checkpoint's (class, hyperparameters and moments as saved) or a fresh one.

    With a state, the class is ``cls_name`` (recorded or ``--g-optimizer``) or inferred from the
    state, and the loaded param groups set every hyperparameter: ``cfg.g_lr``/``g_betas`` only
    configure a fresh optimizer (Adam unless ``cls_name`` says otherwise).
    """
    name = cls_name or ("Adam" if state is None else infer_optimizer_class(state))
    cls = optimizer_class(name)
    fresh = {"lr": cfg.g_lr, **({"betas": cfg.g_betas} if "betas" in (_group_keys(cls) or ()) else {})}
    try:
        opt = cls(G.parameters(), **(fresh if state is None else {}))
    except Exception as err:  # e.g. Muon on G's 1-D parameters
        raise InputError(f"{name} cannot be built on G's parameters ({first_line(err)}); "
                         f"pass another {param('g_optimizer')} NAME or {param('fresh_optimizer')}") from None
    if state is not None:
        try:
            # load_state_dict keeps same-device tensors by reference: without the copy the
            # replay's step would advance the caller's moments in place
            opt.load_state_dict(copy.deepcopy(state))
        except (ValueError, KeyError, RuntimeError, TypeError) as err:
            raise InputError(f"G's optimizer state in the checkpoint does not fit G with {name} ({first_line(err)}); "
                             f"pass {param('g_optimizer')} NAME or {param('fresh_optimizer')}") from None
    return opt


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]
