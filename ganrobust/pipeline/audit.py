"""``ganrobust audit``: load a checkpoint (or a run directory) through the run store, resolve how it
is scored and replayed from what it recorded, audit it (and its persisted snapshots), and return
the report built by :mod:`ganrobust.report.envelope`. The CLI parses, calls this, writes, prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ganrobust.config import AUDIT_MIN_REAL, AuditConfig
from ganrobust.data import load_dataset
from ganrobust.distributed import Context
from ganrobust.gan_call import AugmentedDiscriminator, GanCall, check_pair, gan_call_for, gan_call_from_record
from ganrobust.measure.audit import audit_gan
from ganrobust.module_state import preserved_rng
from ganrobust.pipeline.sweep import audit_sharded, parse_selection
from ganrobust.report.envelope import audit_report
from ganrobust.runs import CHECKPOINT, read_run
from ganrobust.runs.checkpoints import LoadedGAN, load_gan
from ganrobust.runs.settings import configured, describe, resolve_settings, score_spec_for, sigmoid_output
from ganrobust.runs.store import is_run, persisted_steps
from ganrobust.errors import InputError, param

Note = Callable[[str], None]


@dataclass
class Audited:
    """An audit's report and the arrays written beside it (``samples.npz``)."""

    report: dict[str, Any]
    samples: dict[str, np.ndarray]
    images: dict[str, torch.Tensor]


def default_out(checkpoint: Path | None, generator: Path | None) -> Path:
    """``reports/<run directory name>`` for a run or its checkpoint.pt, else ``reports/<file stem>``."""
    name = (checkpoint or generator or Path("audit")).resolve()
    return Path("reports") / (name.parent.name if name.name == CHECKPOINT else name.stem)


def snapshot_count(run_dir: Path, selection: str) -> int:
    """How many persisted snapshots ``selection`` names (for a progress bar)."""
    return len(parse_selection(selection, persisted_steps(run_dir)))


def audit_checkpoint(checkpoint: Path | None, *, cfg: AuditConfig, load: dict[str, Any], bn: str | None = None,
                     d_output: str | None = None, g_loss: str | None = None, g_optimizer: str | None = None,
                     fresh_optimizer: bool = False, data: str | None = None, snapshot_selection: str | None = None,
                     robust_d: int = 0, device: str = "cpu", verify: bool = True, out: Path,
                     command: str, started: float, generator: Path | None = None,
                     note: Note = lambda _m: None, progress: Callable[[str], None] | None = None,
                     snapshot_tick: Callable[[int], None] | None = None, ctx: Context | None = None,
                     num_classes: int | None = None, d_condition: bool = True, head: int | None = None,
                     gan_call: str | None = None, d_augment: bool = False, g_bn: str | None = None,
                     batch: int | None = None, g_lr: float | None = None,
                     g_betas: tuple[float, float] | None = None) -> Audited | None:
    """Audit ``checkpoint`` (a file or a run directory; ``load`` holds the other arguments of
    :func:`ganrobust.runs.checkpoints.load_gan`). ValueError (CheckpointError) with the fix for
    anything that cannot be audited; ``note`` receives one line per thing the user should know.

    ``ctx`` (under ``torchrun``): the checkpoint's audit and the persisted snapshots are one list
    of items sharded over the ranks (:func:`ganrobust.pipeline.sweep.audit_sharded`); rank 0 gets
    the report, equal to the single-process one, and the other ranks None.

    How G and D are called (:mod:`ganrobust.gan_call`): ``num_classes`` (as the run recorded by
    default; StyleGAN networks are recognised by their attributes), ``d_condition=False`` for an
    AC-GAN's D(x), ``head`` for a D with several outputs, ``gan_call`` (``pkg.mod:Class``) for any
    other convention; ``d_augment`` scores a StyleGAN2-ADA D behind its snapshot's augment pipe.
    ``g_bn`` and ``batch`` (G's BatchNorm mode and the replayed step's latent batch) are, like
    ``bn``, as the run recorded unless given (:mod:`ganrobust.runs.settings`).
    ``data`` may be a folder of images, read at the model's resolution, channels and range.
    ``g_lr``/``g_betas`` (a fresh optimizer's; None: the family's own update, else ``cfg``'s)."""
    ctx = ctx or Context()
    folder = data is not None and Path(data).is_dir()
    dataset = None if data is None or folder else load_dataset(data, n=max(cfg.n_probes, AUDIT_MIN_REAL), seed=cfg.seed)
    real = None if dataset is None else dataset.x
    loaded = load_gan(checkpoint, generator=generator, d_output=d_output, verify=verify, **load)
    if d_augment:
        if loaded.augment_pipe is None or loaded.stylegan is None:
            raise InputError(f"{param('d_augment')} needs a StyleGAN2-ADA snapshot with an augment_pipe; this checkpoint has none")
        loaded.D = AugmentedDiscriminator(loaded.D, loaded.augment_pipe).eval()
        loaded.stylegan["augment"] = (f"used: D scores augment_pipe(x) ({type(loaded.augment_pipe).__name__}, "
                                      f"p={loaded.stylegan.get('augment_p')})")
    dev = ctx.device(device)  # a bare cuda is cuda:LOCAL_RANK, one process per GPU
    loaded.G.to(dev)
    loaded.D.to(dev)
    if head is not None:
        loaded.score["head"] = head
    own = loaded.call if gan_call is None else None  # the family's adapter, unless --gan-call names another
    if num_classes is None and gan_call is None and loaded.gan_call:
        call = gan_call_from_record(loaded.gan_call)  # the run's own adapter, rebuilt (custom ones too)
    else:
        if own is not None and num_classes not in (None, own.classes) and loaded.stylegan is None:
            raise InputError(f"{param('num_classes')} {num_classes} does not fit this {loaded.family} checkpoint, whose "
                             f"networks have {own.classes} classes; drop {param('num_classes')}")
        call = own if own is not None and num_classes in (None, own.classes) else \
            gan_call_for(loaded.G, loaded.D, num_classes, d_condition=d_condition, adapter=gan_call)
    check_pair(loaded.G, loaded.D, call, loaded.latent_shape)
    if call.conditional:
        note(f"GAN called as {call.describe()}")
    check_fit(loaded, call)
    x, c = _samples(loaded, call)
    shape = tuple(x.shape[1:])
    settings = resolve_settings(loaded, bn=bn, d_output=d_output, g_loss=g_loss, g_optimizer=g_optimizer,
                                fresh_optimizer=fresh_optimizer, g_lr=g_lr, g_betas=g_betas, g_bn=g_bn, batch=batch,
                                sigmoid=sigmoid_output(loaded.D, x, c, call if call.binds else None,
                                                       loaded.score.get("head")))
    cfg = configured(cfg, settings, loaded.train_config)
    spec = score_spec_for(loaded, settings, call)
    if folder:  # images at the model's resolution, channels and range
        from ganrobust.image_folder import load_image_folder

        if len(shape) != 3 or shape[1] != shape[2]:
            raise InputError(f"{param('data')} {data} is a folder of images, but G makes samples of shape {shape}")
        dataset = load_image_folder(data, size=shape[1], channels=shape[0], bounds=loaded.bounds,  # type: ignore[arg-type]
                                    limit=max(cfg.n_probes, AUDIT_MIN_REAL))
        real = dataset.x
        note(f"{len(dataset)} images from {data}, resized to {shape[1]}x{shape[2]}, {shape[0]} channel(s), scaled to "
             f"[{loaded.bounds[0]:g}, {loaded.bounds[1]:g}]"
             + (f", {len(dataset.classes)} classes from sub-folders" if dataset.classes else ""))
    if spec.critic and real is None:
        raise InputError(f"D is a critic (kind=critic, from the {settings['kind'].source}): its threshold is "
                         f"calibrated on real samples; pass {param('data')}")
    if real is not None and tuple(real.shape[1:]) != shape:
        raise InputError(f"{param('data')} samples have shape {tuple(real.shape[1:])} but G makes {shape}; pass data of the "
                         f"model's size and channels")
    for line in loaded.notes:
        note(line)
    if settings["kind"].source == "detected":
        head = loaded.score.get("head")
        note(f"D{'' if head is None else f' output {head}'} ends in nn.Sigmoid: scored as kind='prob' (the Sigmoid's "
             f"input is the logit); pass --d-output logit to score its output as it is")
    if loaded.update is not None and loaded.update.why and any(s.source == "family" for s in settings.values()):
        note(f"the {loaded.family} family's own update: {loaded.update.why}")
    note(f"audit settings: {describe(settings)}")

    def audit_itself() -> dict[str, Any]:
        return audit_gan(loaded.G, loaded.D, scorer_options=spec, latent_shape=loaded.latent_shape,
                         opt_state=None if fresh_optimizer else loaded.optimizer_g,
                         opt_class=settings["optimizer"].value, cfg=cfg, real=real, progress=progress,
                         robust_d_steps=robust_d, call=call, real_labels=None if dataset is None else dataset.y)

    # item 0 is the checkpoint's audit, the persisted snapshots follow; item i runs on rank i mod world
    measured, snapshots = audit_sharded(audit_itself, Path(checkpoint or ".") if snapshot_selection else None, loaded,
                                        out, selection=snapshot_selection, cfg=cfg, scorer_options=spec,
                                        tick=snapshot_tick, verify=verify, real=real, ctx=ctx, call=call)
    if measured is None:  # not rank 0: rank 0 alone builds the report
        return None
    for line in not_replayed_notes(snapshots or []):
        note(line)
    source = {"checkpoint": str(checkpoint) if checkpoint else None,
              "generator": str(generator) if generator else None,
              "discriminator": str(load.get("discriminator")) if load.get("discriminator") else None,
              "format": loaded.source, "family": loaded.family, "notes": loaded.notes,
              **({"family_update": loaded.update.why} if loaded.update is not None and loaded.update.why else {}),
              **({"stylegan": loaded.stylegan} if loaded.stylegan else {}),
              "settings": {**{key: setting.to_dict() for key, setting in settings.items()},
                           "batch_coupling": {"value": measured.pop("batch_coupling", None), "from": "detected"}},
              "replay": _replay(loaded, settings, cfg, fresh_optimizer)}
    run = read_run(checkpoint) if checkpoint is not None and is_run(checkpoint) else None
    report = audit_report(measured, source=source, config=cfg.to_dict(),
                          score=spec.to_dict(), command=command, started=started,
                          title=str(checkpoint or generator), snapshots=snapshots, run=run)
    return Audited(report, measured["samples"], measured["images"])


def not_replayed_notes(snapshots: list[dict[str, Any]]) -> list[str]:
    """One line per reason some snapshot could not replay an Odena argument (a run written before
    the step inputs were kept: the arguments are then at the checkpoint alone, as before)."""
    reasons: dict[str, list[int]] = {}
    for snapshot in snapshots:
        for argument, reason in ((snapshot.get("odena") or {}).get("not_replayed") or {}).items():
            reasons.setdefault(f"{argument}: {reason}", []).append(snapshot["step"])
    return [f"Odena's argument {what} — at {len(steps)} snapshot(s) (steps {', '.join(map(str, steps[:6]))}"
            f"{', ...' if len(steps) > 6 else ''})" for what, steps in reasons.items()]


def _samples(loaded: LoadedGAN, call: GanCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Two of G's samples and their conditions (eval mode, no gradient, seed 0)."""
    z, c = call.sample(2, loaded.latent_shape, torch.Generator().manual_seed(0),
                       next((p.device for p in loaded.G.parameters()), torch.device("cpu")))
    with torch.no_grad():
        return call.generate(loaded.G.eval(), z, c), c


def check_fit(loaded: LoadedGAN, call: GanCall) -> None:
    """InputError (one line) when D cannot score G's samples: the models the user named do not fit
    each other (shapes, channels, sizes). Two samples, eval mode, no gradient; a failure later in the
    audit is then ganrobust's own."""
    z, c = call.sample(2, loaded.latent_shape, torch.Generator().manual_seed(0),
                       next((p.device for p in loaded.G.parameters()), torch.device("cpu")))
    try:
        with torch.no_grad(), preserved_rng(z.device):  # a D drawing noise leaves the global RNG as it was
            call.score_input(loaded.D.eval(), call.generate(loaded.G.eval(), z, c), c)
    except (RuntimeError, TypeError, IndexError, ValueError) as err:
        text = str(err).strip().splitlines()
        raise InputError(f"D cannot score G's samples ({type(err).__name__}: {text[0] if text else ''}); check that "
                         f"G's output fits D ({param('arch')}, {param('generator_class')}, {param('discriminator_class')}) and {param('device')}") from None


def _replay(loaded: LoadedGAN, settings: dict[str, Any], cfg: AuditConfig, fresh_optimizer: bool) -> str:
    if loaded.optimizer_g and not fresh_optimizer:
        return "checkpoint optimizer state"
    return f"fresh {settings['optimizer'].value}(lr={cfg.g_lr}, betas={cfg.g_betas})"
