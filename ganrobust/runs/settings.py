"""What an audit scores and replays with, and where each setting came from.

A run records how its D scored (BatchNorm mode, output kind), how its G generated (G's BatchNorm
mode ``g_bn``) and the latent batch of its steps (``g_batch``, seen by the hook; ``train_config.batch``
for ``ganrobust train`` runs) and, for ``ganrobust train`` runs, the loss it trained with;
replaying G's next update with anything else replays another update.
So each setting is, in order: the explicit option, what the run recorded (its manifest, else
the checkpoint), what the model shows (a trailing ``nn.Sigmoid`` means probabilities), the
default. The report states every value and its source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganrobust.conventions import BatchNormMode

from ganrobust.config import UNRECORDED_BN, AuditConfig, ScoreSpec, WatchConfig
from ganrobust.module_state import evaluation_state, preserved_rng
from ganrobust.optimizers import infer_optimizer_class
from ganrobust.runs.checkpoints import LoadedGAN
from ganrobust.errors import InputError, param

#: ``ganrobust train --loss`` -> the audit's name of the same generator loss
#: (trainer: ns is softplus(−s); hinge and wgan are −s)
TRAIN_G_LOSS = {"ns": "ns", "hinge": "hinge", "wgan": "wasserstein"}
SOURCES = ("option", "run manifest", "checkpoint", "detected", "family", "default")


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # one of SOURCES

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "from": self.source}


def trailing_sigmoid(D: nn.Module) -> bool:
    """Whether D's last module is an ``nn.Sigmoid`` (D outputs probabilities)."""
    modules = list(D.modules())
    return len(modules) > 1 and isinstance(modules[-1], nn.Sigmoid)


def sigmoid_output(D: nn.Module, x: torch.Tensor, c: torch.Tensor | None, call: Any, head: int | None) -> bool:
    """Whether D's realness output is an ``nn.Sigmoid``'s output (D outputs probabilities), seen on
    one forward of ``x`` (D in eval mode, no gradient, RNG untouched): the whole output of a
    single-output D, or output ``head`` of a D with several (an AC-GAN's validity head ends in a
    Sigmoid while its last module is the class head's Softmax)."""
    sigmoids = [m for m in D.modules() if isinstance(m, nn.Sigmoid)]
    if not sigmoids:
        return False
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out)) for m in sigmoids]
    try:
        with torch.no_grad(), preserved_rng(x.device), evaluation_state(D):
            raw = call.score_input(D, x, c) if call is not None else D(x)
    finally:
        for h in handles:
            h.remove()
    if isinstance(raw, (tuple, list)):
        if head is None or not -len(raw) <= head < len(raw):
            return False
        raw = raw[head]
    elif head is not None and isinstance(raw, torch.Tensor) and raw.dim() > 1:
        raw = raw[..., head]
    return isinstance(raw, torch.Tensor) and any(
        isinstance(out, torch.Tensor) and out.numel() == raw.numel()
        and out.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr() for out in seen)


def _recorded(loaded: LoadedGAN, key: str) -> Setting | None:
    value = loaded.score.get(key)
    return None if value is None else Setting(value, loaded.origins.get(key, "checkpoint"))


def resolve_settings(loaded: LoadedGAN, *, bn: str | None = None, d_output: str | None = None,
                     g_loss: str | None = None, g_optimizer: str | None = None,
                     fresh_optimizer: bool = False, g_lr: float | None = None,
                     g_betas: tuple[float, float] | None = None, sigmoid: bool | None = None,
                     g_bn: str | None = None, batch: int | None = None) -> dict[str, Setting]:
    """``bn``, ``kind``, ``g_loss``, ``d_loss``, G's ``optimizer`` class, G's BatchNorm mode ``g_bn``
    and the replayed step's latent ``batch`` for auditing ``loaded``;
    None options mean "as recorded". ValueError (naming the option) where nothing decides.

    What the run recorded comes first, then the loaded family's own update (``loaded.update``: its
    G loss, and for a fresh optimizer its lr and betas, reported as ``g_lr``/``g_betas``), then the
    default. ``sigmoid``: whether D's (selected) output was seen to be an ``nn.Sigmoid``'s, as
    :func:`sigmoid_output` finds; None: D's last module is checked."""
    train_loss = (loaded.train_config or {}).get("loss")
    if train_loss is not None and train_loss not in TRAIN_G_LOSS:
        raise InputError(f"the run's manifest records train_config.loss {train_loss!r}; expected one of "
                         f"{sorted(TRAIN_G_LOSS)}: pass {param('g_loss')}")
    update = loaded.update
    family_loss = update.g_loss if update is not None else None
    prob = trailing_sigmoid(loaded.D) if sigmoid is None else sigmoid
    settings = {
        "bn": Setting(bn, "option") if bn else _recorded(loaded, "bn") or Setting(UNRECORDED_BN.value, "default"),
        "kind": Setting(d_output, "option") if d_output else _recorded(loaded, "kind")
        or (Setting("prob", "detected") if prob else Setting(WatchConfig.kind.value, "default")),
        "g_loss": Setting(g_loss, "option") if g_loss else
        Setting(TRAIN_G_LOSS[train_loss], "run manifest") if train_loss else
        Setting(family_loss, "family") if family_loss else Setting(AuditConfig.g_loss, "default"),
        "d_loss": Setting(train_loss, "run manifest") if train_loss else
        Setting(getattr(AuditConfig, "d_loss", "ns"), "default"),
        "optimizer": _optimizer(loaded, g_optimizer, fresh_optimizer),
        "g_bn": g_bn_setting(loaded, g_bn),
        "batch": batch_setting(loaded, batch),
    }
    if fresh_optimizer or loaded.optimizer_g is None:  # a fresh optimizer: its lr and betas are part of the update
        for key, given, own, default in (("g_lr", g_lr, update and update.lr, AuditConfig.g_lr),
                                         ("g_betas", g_betas, update and update.betas, AuditConfig.g_betas)):
            settings[key] = Setting(given, "option") if given is not None else Setting(own, "family") \
                if own is not None else Setting(default, "default")
    return settings


def g_bn_setting(loaded: LoadedGAN, g_bn: str | None = None) -> Setting:
    """How G's BatchNorm generates: the option, what the run recorded, else the default."""
    if g_bn:
        return Setting(BatchNormMode(g_bn).value, "option")
    return _recorded(loaded, "g_bn") or Setting(AuditConfig.g_bn.value, "default")


def batch_setting(loaded: LoadedGAN, batch: int | None = None) -> Setting:
    """The latent batch of the replayed step: the option, the batch the hook saw G's steps take
    (``score.g_batch``), a ``ganrobust train`` run's ``train_config.batch``, else the default."""
    if batch is not None:
        if batch < 1:
            raise InputError(f"expected {param('batch')} >= 1, got {batch}")
        return Setting(int(batch), "option")
    seen = _recorded(loaded, "g_batch")
    if seen is not None:
        return Setting(int(seen.value), seen.source)
    trained = (loaded.train_config or {}).get("batch")
    if trained is not None:
        return Setting(int(trained), "run manifest")
    return Setting(AuditConfig.batch, "default")


def _optimizer(loaded: LoadedGAN, g_optimizer: str | None, fresh: bool) -> Setting:
    if g_optimizer:
        return Setting(g_optimizer, "option")
    if fresh or loaded.optimizer_g is None:
        return Setting("Adam", "default")
    if loaded.optimizer_g_class:
        return Setting(loaded.optimizer_g_class, "checkpoint")
    return Setting(infer_optimizer_class(loaded.optimizer_g), "detected")


def configured(cfg: AuditConfig, settings: dict[str, Setting], train_config: dict[str, Any] | None = None
               ) -> AuditConfig:
    """``cfg`` with the resolved losses, G's BatchNorm mode and the replay's latent batch (and, for a
    fresh optimizer, its lr and betas); a WGAN run's robust copy keeps the run's weight clipping."""
    changes: dict[str, Any] = {"g_loss": settings["g_loss"].value, "d_loss": settings["d_loss"].value,
                               "g_bn": BatchNormMode(settings["g_bn"].value), "batch": settings["batch"].value}
    for key in ("g_lr", "g_betas"):
        if key in settings:
            changes[key] = tuple(settings[key].value) if key == "g_betas" else float(settings[key].value)
    clip = (train_config or {}).get("clip")
    if settings["d_loss"].value == "wgan" and clip is not None:
        changes["d_clip"] = float(clip)
    return dataclasses.replace(cfg, **changes)


def score_spec_for(loaded: LoadedGAN, settings: dict[str, Setting], call: Any = None) -> ScoreSpec:
    """How the audit scores ``loaded``'s D: the resolved kind and BatchNorm mode, the data range, a
    recorded tau (a critic's is calibrated on each snapshot instead) and head, for a GAN called
    through ``call`` (:meth:`ScoreSpec.for_call`: no box where D sees G's raw output)."""
    spec = ScoreSpec(kind=settings["kind"].value, bounds=loaded.bounds, bn=settings["bn"].value,
                     head=None if loaded.score.get("head") is None else int(loaded.score["head"]))
    if loaded.score.get("tau") is not None and not spec.critic:
        spec = dataclasses.replace(spec, tau=loaded.score["tau"])
    return spec.for_call(call)


def describe(settings: dict[str, Setting]) -> str:
    """One line: ``bn=batch (run manifest), kind=logit (default), ...``."""
    return ", ".join(f"{key}={s.value} ({s.source})" for key, s in settings.items())
