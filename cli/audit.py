"""``ganrobust audit``: audit a saved GAN checkpoint or a run directory."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ganrobust.cli.common import checked_device, choice, close_progress_bars, fail, parse_pair
from ganrobust.config import ARCHS, AUDIT_ROBUST_D_STEPS, DEVICE, G_LOSSES, AuditConfig
from ganrobust.conventions import BatchNormMode, Precision, ScoreKind
from ganrobust.errors import InputError, cli_text


@click.command()
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@click.option("--generator", type=click.Path(path_type=Path), help="G weights file (pytorch/examples netG_epoch_*.pth, TorchScript).")
@click.option("--discriminator", type=click.Path(path_type=Path), help="D weights file, paired with --generator.")
@click.option("--arch", type=choice(ARCHS), help="Built-in architecture; hyperparameters are inferred from tensor shapes.")
@click.option("--generator-class", help="Import path of G's class, e.g. mypkg.models:Generator.")
@click.option("--generator-kwargs", help="JSON keyword arguments for --generator-class.")
@click.option("--discriminator-class", help="Import path of D's class.")
@click.option("--discriminator-kwargs", help="JSON keyword arguments for --discriminator-class.")
@click.option("--d-output", type=choice(ScoreKind),
              help="What D outputs [default: as the run recorded, else 'prob' when D ends in nn.Sigmoid "
                   "(or for pytorch/examples pairs), else logit].")
@click.option("--bn", type=choice(BatchNormMode, exclude=(BatchNormMode.AUTO,)),
              help="How D's BatchNorm scores [default: as the run recorded, else eval].")
@click.option("--g-bn", type=choice(BatchNormMode, exclude=(BatchNormMode.AUTO,)),
              help="How G's BatchNorm generates the probes and the replay [default: as the run recorded, else batch].")
@click.option("--batch", type=int, help="Latent batch of the replayed generator step [default: as the run recorded "
              "(the batch the hook saw, or `ganrobust train --batch`), else 64].")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled whole-module checkpoints (runs code from the file: only for files you trust).")
@click.option("--data", help="Real samples for real->fake robustness and critic calibration: shapes, 8gaussians, digits, "
              "an .npz/.npy file, or a folder of PNG/JPEG images (resized to the model's resolution; class sub-folders "
              "give a conditional model its labels).")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: reports/<checkpoint name>/].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (everything else goes to stderr).")
@click.option("--seed", type=int, default=AuditConfig.seed, show_default=True)
@click.option("--n-probes", type=int, default=AuditConfig.n_probes, show_default=True, help="Held-out probe latents.")
@click.option("--eps", type=float, default=AuditConfig.eps, show_default="8/255", help="'Small' linf budget, as a fraction of the data range.")
@click.option("--k-steps", type=int, default=AuditConfig.k_steps, show_default=True, help="Replayed generator steps for Odena's argument 1.")
@click.option("--g-loss", type=choice(G_LOSSES),
              help="G's loss for the replay [default: the loss a `ganrobust train` run recorded "
                   "(ns; hinge; wgan -> wasserstein), else the family's own (mimicry, StudioGAN, BigGAN: as they "
                   "train), else ns].")
@click.option("--g-lr", type=float, default=AuditConfig.g_lr, show_default=True, help="Learning rate when the checkpoint has "
              "no G optimizer state [default: the family's own (StyleGAN2-ADA: 0.002), else this].")
@click.option("--g-betas", default=",".join(map(str, AuditConfig.g_betas)), show_default=True, help="Adam betas when the "
              "checkpoint has no G optimizer state [default: the family's own (StyleGAN2-ADA: 0,0.992), else these].")
@click.option("--fresh-optimizer", is_flag=True, help="Ignore G's optimizer state in the checkpoint.")
@click.option("--g-optimizer", help="G's optimizer class in torch.optim (Adam, RMSprop, NAdam, ...) [default: as "
              "the checkpoint recorded, else inferred from its state where unambiguous; Adam for a fresh one].")
@click.option("--no-verify", is_flag=True, help="Audit a run's checkpoint and snapshots even when they do not match "
              "the SHA-256 recorded in its manifest.json.")
@click.option("--snapshots", "snapshot_selection", help="For a run directory: also audit its persisted snapshots "
              "('all', 'last' or steps like 100,200): the update, D's robustness and Odena's three "
              "arguments at each. Resumable: finished steps are skipped on a rerun.")
@click.option("--robust-d", "robust_d", type=int, default=AUDIT_ROBUST_D_STEPS, show_default=True,
              help="Fine-tune an adversarially trained copy of D for this many steps (needs --data) and measure the "
                   "same replayed update against both discriminators.")
@click.option("--precision", type=choice(Precision), default=AuditConfig.precision, show_default=True,
              help="Precision of attack searches (auto: bf16 where it times faster on this model and host); results are verified in float32.")
@click.option("--num-classes", type=int, help="A class-conditional GAN called as G(z, y), D(x, y) with integer labels "
              "0..K-1 [default: as the run recorded; StyleGAN networks are recognised by their attributes].")
@click.option("--d-condition/--no-d-condition", default=True, show_default=True,
              help="With --num-classes: D takes the label, D(x, y) (projection D); --no-d-condition: D(x) (AC-GAN).")
@click.option("--head", type=int, help="For a D with several outputs (AC-GAN: validity, class): the index of the "
              "real/fake output.")
@click.option("--gan-call", "gan_call_spec", help="A GanCall subclass for any other calling convention, "
              "pkg.module:Class (built with --num-classes); see README, 'Your GAN'.")
@click.option("--d-augment", is_flag=True, help="StyleGAN2-ADA snapshots: score D behind the snapshot's augment_pipe, "
              "as it trains (random when its p > 0) [default: D on un-augmented images]. The report states which.")
@click.option("--config", "family_config", type=click.Path(path_type=Path),
              help="A family's own config file: StudioGAN's YAML [default: found from the run name among StudioGAN's "
                   "src/configs/].")
@click.option("--device", default=DEVICE, show_default=True)
def audit(checkpoint: Path | None, generator: Path | None, discriminator: Path | None, arch: str | None,
          generator_class: str | None, generator_kwargs: str | None, discriminator_class: str | None,
          discriminator_kwargs: str | None, d_output: str | None, bn: str | None, g_bn: str | None,
          batch: int | None, trust_checkpoint: bool,
          data: str | None, out: Path | None, as_json: bool, seed: int, n_probes: int, eps: float, k_steps: int,
          g_loss: str | None, g_lr: float, g_betas: str, fresh_optimizer: bool, g_optimizer: str | None,
          no_verify: bool, snapshot_selection: str | None, robust_d: int, precision: str,
          num_classes: int | None, d_condition: bool, head: int | None, gan_call_spec: str | None, d_augment: bool,
          family_config: Path | None, device: str) -> None:
    """Audit a GAN checkpoint: replay its next generator update, measure whether it is an
    accidental attack on D, test Odena's three arguments, and sweep D's robustness.

    \b
    Formats:
      ganrobust audit runs/dcgan/checkpoint.pt          # ganrobust checkpoint or run directory
      ganrobust audit gan.ckpt --arch dcgan             # dict with G/D, netG/netD, Lightning ...
      ganrobust audit --generator netG_epoch_24.pth --discriminator netD_epoch_24.pth --arch dcgan
      ganrobust audit ckpt.pt --generator-class pkg.mod:G --generator-kwargs '{"nz": 100}' \\
                              --discriminator-class pkg.mod:D

    Writes report.json (schema ganrobust.report/1), summary.md and samples.npz to --out.
    Same seed, same numbers.
    """
    from ganrobust.distributed import RankFailed, init_from_env
    from ganrobust.pipeline.audit import audit_checkpoint, default_out, snapshot_count
    from ganrobust.report.files import write_report
    from ganrobust.runs import to_jsonable

    started = time.time()
    try:
        ctx = init_from_env(device)  # under torchrun: join its process group (gloo on CPU, NCCL on GPU)
    except (ValueError, RuntimeError) as err:
        fail(f"joining the torch.distributed process group failed ({err}); check torchrun's MASTER_ADDR/MASTER_PORT")
    try:  # every option is checked before any work
        cfg = _checked_options(checkpoint=checkpoint, data=data, d_output=d_output, seed=seed, n_probes=n_probes,
                               eps=eps, k_steps=k_steps, g_loss=g_loss, g_lr=g_lr, g_betas=g_betas,
                               g_optimizer=g_optimizer, snapshot_selection=snapshot_selection, robust_d=robust_d,
                               device=device, precision=precision)
        out_dir = out or default_out(checkpoint, generator)
        sbar = None  # progress bars and notes on rank 0 only
        if snapshot_selection is not None and ctx.is_main:
            sbar = _progress(snapshot_count(Path(checkpoint or "."), snapshot_selection), "snapshots", "step",
                             first_is_start=False)
        bar = _progress() if ctx.is_main else None  # its total: the audit's sections that run (plan)
        try:
            audited = audit_checkpoint(
                checkpoint, cfg=cfg, generator=generator,
                load={"discriminator": discriminator, "arch": arch, "generator_class": generator_class,
                      "generator_kwargs": generator_kwargs, "discriminator_class": discriminator_class,
                      "discriminator_kwargs": discriminator_kwargs, "trust": trust_checkpoint,
                      "config": str(family_config) if family_config else None},
                bn=bn, g_bn=g_bn, batch=batch, d_output=d_output, g_loss=g_loss, g_optimizer=g_optimizer, fresh_optimizer=fresh_optimizer,
                data=data, snapshot_selection=snapshot_selection, robust_d=robust_d, device=device,
                verify=not no_verify, out=out_dir, command=" ".join(["ganrobust", *sys.argv[1:]]), started=started,
                note=lambda line: click.echo(f"note: {line}", err=True) if ctx.is_main else None, progress=bar,
                snapshot_tick=sbar, ctx=ctx, num_classes=num_classes, d_condition=d_condition, head=head,
                gan_call=gan_call_spec, d_augment=d_augment, **_given_update(cfg))
        except BaseException:
            close_progress_bars()  # each bar ends its line where it stopped, before the error is printed
            raise
        if bar is not None:
            bar.close()
        if sbar is not None:
            sbar.close()
    except RankFailed as err:
        fail(f"{cli_text(err)}; the audit stopped on every rank (finished snapshot steps are kept: rerun to resume)")
    except (InputError, FileNotFoundError) as err:  # anything else is a bug: cli.main shows its traceback
        fail(cli_text(err))
    if audited is None:  # not rank 0: rank 0 alone writes the report and prints
        return
    report = audited.report
    index = write_report(out_dir, report, audited.samples, audited.images)
    for diagnostic in report.get("diagnostics") or []:
        click.echo(f"warning: [{diagnostic['code']}] {diagnostic['message']}", err=True)
    click.echo(f"wrote {index} (+ report.json, summary.md, samples.npz) in {time.time() - started:.0f} s", err=True)
    if as_json:
        click.echo(json.dumps(to_jsonable(report["summary"]), indent=2))
    else:
        s = report["summary"]
        click.echo(f"accidental-attack rate {_fmt(s['aar'])}; flip rate {_fmt(s['flip_rate'])} vs random-direction "
                   f"control {_fmt(s['noise_flip_rate'])}", err=True)


def _checked_options(*, checkpoint: Path | None, data: str | None, d_output: str | None, seed: int, n_probes: int,
                     eps: float, k_steps: int, g_loss: str | None, g_lr: float, g_betas: str,
                     g_optimizer: str | None, snapshot_selection: str | None, robust_d: int, device: str,
                     precision: str) -> AuditConfig:
    """The audit's config from the options; ValueError (one line, with the fix) for any bad option or
    combination, before anything is loaded or trained."""
    from ganrobust.optimizers import optimizer_class

    cfg = AuditConfig(n_probes=n_probes, eps=eps, k_steps=k_steps, g_lr=g_lr, g_betas=parse_pair(g_betas, "--g-betas"),
                      seed=seed, precision=precision, **({"g_loss": g_loss} if g_loss else {}))
    if robust_d < 0:
        raise InputError(f"expected --robust-d >= 0 steps, got {robust_d}")
    if robust_d and data is None:
        raise InputError("--robust-d needs real samples to train the robust D on: pass --data")
    if d_output == "critic" and data is None:
        raise InputError("--d-output critic needs real samples to calibrate the critic's threshold: pass --data")
    if snapshot_selection is not None and (checkpoint is None or not checkpoint.is_dir()):
        raise InputError(f"--snapshots needs a run directory written by ganrobust.watch, got "
                         f"{str(checkpoint) if checkpoint else 'no checkpoint'}")
    if g_optimizer is not None:
        optimizer_class(g_optimizer)
    checked_device(device)
    return cfg


def _given_update(cfg: AuditConfig) -> dict[str, Any]:
    """``g_lr``/``g_betas`` when given on the command line (None otherwise: the family's own, else the default)."""
    ctx = click.get_current_context()
    given = {key: ctx.get_parameter_source(key) is not click.core.ParameterSource.DEFAULT for key in ("g_lr", "g_betas")}
    return {"g_lr": cfg.g_lr if given["g_lr"] else None, "g_betas": cfg.g_betas if given["g_betas"] else None}


def _fmt(est: dict[str, Any]) -> str:
    if not est["n"]:
        return "n/a (no fake-classified probe)"
    return f"{est['value']:.1%} [{est['ci_low']:.1%}, {est['ci_high']:.1%}] (n={est['n']})"


class _progress:
    """A tqdm bar on stderr over ``total`` units, opened at its first tick (so that the notes printed
    before the work starts stand on lines of their own). The audit's bar learns its total from the
    audit itself (:meth:`plan`: the number of its sections that run)."""

    def __init__(self, total: int = 0, desc: str = "audit", unit: str = "stage", *,
                 first_is_start: bool = True) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.first_is_start = first_is_start  # a stage bar's first message starts stage 1
        self.bar: Any = None

    def plan(self, total: int) -> None:
        """Set the number of units before the first tick."""
        self.total = total
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def __call__(self, message: str | int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr, dynamic_ncols=True)
            if not self.first_is_start:
                self.bar.update(1)
        else:
            self.bar.update(1)
        self.bar.set_postfix_str(str(message))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.total - self.bar.n)
            self.bar.close()
