"""``ganrobust audit``: audit a saved GAN checkpoint or a run directory."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ganrobust.cli.common import fail, parse_pair
from ganrobust.config import PRECISION


@click.command()
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@click.option("--generator", type=click.Path(path_type=Path), help="G weights file (pytorch/examples netG_epoch_*.pth, TorchScript).")
@click.option("--discriminator", type=click.Path(path_type=Path), help="D weights file, paired with --generator.")
@click.option("--arch", type=click.Choice(["dcgan", "mlp"]), help="Built-in architecture; hyperparameters are inferred from tensor shapes.")
@click.option("--generator-class", help="Import path of G's class, e.g. mypkg.models:Generator.")
@click.option("--generator-kwargs", help="JSON keyword arguments for --generator-class.")
@click.option("--discriminator-class", help="Import path of D's class.")
@click.option("--discriminator-kwargs", help="JSON keyword arguments for --discriminator-class.")
@click.option("--d-output", type=click.Choice(["logit", "prob", "critic"]),
              help="What D outputs [default: as the run recorded, else 'prob' when D ends in nn.Sigmoid "
                   "(or for pytorch/examples pairs), else logit].")
@click.option("--bn", type=click.Choice(["eval", "batch"]),
              help="How D's BatchNorm scores [default: as the run recorded, else eval].")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled whole-module checkpoints (runs code from the file: only for files you trust).")
@click.option("--data", help="Real samples for real->fake robustness and critic calibration: shapes, 8gaussians, digits, or an .npz/.npy file.")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: reports/<checkpoint name>/].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (everything else goes to stderr).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-probes", type=int, default=256, show_default=True, help="Held-out probe latents.")
@click.option("--eps", type=float, default=8 / 255, show_default="8/255", help="'Small' linf budget, as a fraction of the data range.")
@click.option("--k-steps", type=int, default=10, show_default=True, help="Replayed generator steps for Odena's argument 1.")
@click.option("--g-loss", type=click.Choice(["ns", "bce", "hinge", "wasserstein"]),
              help="G's loss for the replay [default: the loss a `ganrobust train` run recorded "
                   "(ns; hinge; wgan -> wasserstein), else ns].")
@click.option("--g-lr", type=float, default=2e-4, show_default=True, help="Learning rate when the checkpoint has no G optimizer state.")
@click.option("--g-betas", default="0.5,0.999", show_default=True, help="Adam betas when the checkpoint has no G optimizer state.")
@click.option("--fresh-optimizer", is_flag=True, help="Ignore G's optimizer state in the checkpoint.")
@click.option("--g-optimizer", help="G's optimizer class in torch.optim (Adam, RMSprop, NAdam, ...) [default: as "
              "the checkpoint recorded, else inferred from its state where unambiguous; Adam for a fresh one].")
@click.option("--no-verify", is_flag=True, help="Audit a run's checkpoint and snapshots even when they do not match "
              "the SHA-256 recorded in its manifest.json.")
@click.option("--snapshots", "snapshot_selection", help="For a run directory: also audit its persisted snapshots "
              "('all', 'last' or steps like 100,200). Resumable: finished steps are skipped on a rerun.")
@click.option("--robust-d", "robust_d", type=int, default=0, show_default=True,
              help="Fine-tune an adversarially trained copy of D for this many steps (needs --data) and measure the "
                   "same replayed update against both discriminators.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=PRECISION, show_default=True,
              help="Precision of attack searches (auto: bf16 where the hardware runs it natively); results are verified in float32.")
@click.option("--device", default="cpu", show_default=True)
def audit(checkpoint: Path | None, generator: Path | None, discriminator: Path | None, arch: str | None,
          generator_class: str | None, generator_kwargs: str | None, discriminator_class: str | None,
          discriminator_kwargs: str | None, d_output: str | None, bn: str | None, trust_checkpoint: bool,
          data: str | None, out: Path | None, as_json: bool, seed: int, n_probes: int, eps: float, k_steps: int,
          g_loss: str | None, g_lr: float, g_betas: str, fresh_optimizer: bool, g_optimizer: str | None,
          no_verify: bool, snapshot_selection: str | None, robust_d: int, precision: str,
          device: str) -> None:
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
    import torch

    from ganrobust.audit import REPORT_SCHEMA, audit_gan, config_dict, verdicts
    from ganrobust.audit_settings import configured, describe, resolve_settings, scorer_options_for
    from ganrobust.checkpoints import CheckpointError, load_gan
    from ganrobust.data import load_dataset
    from ganrobust.distributed import RankFailed, init_from_env
    from ganrobust.environment import environment
    from ganrobust.reporting import write_report

    started = time.time()
    try:
        ctx = init_from_env(device)  # under torchrun: join its process group (gloo on CPU, NCCL on GPU)
    except (ValueError, RuntimeError) as err:
        fail(f"joining the torch.distributed process group failed ({err}); check torchrun's MASTER_ADDR/MASTER_PORT")
    try:  # every option is checked before any work
        cfg = _checked_options(checkpoint=checkpoint, data=data, d_output=d_output, seed=seed, n_probes=n_probes,
                               eps=eps, k_steps=k_steps, g_loss=g_loss, g_lr=g_lr, g_betas=g_betas,
                               g_optimizer=g_optimizer, snapshot_selection=snapshot_selection, robust_d=robust_d,
                               device=device)
        cfg = dataclasses.replace(cfg, precision=precision)
        real = None if data is None else load_dataset(data, n=max(n_probes, 1000), seed=seed).x
        loaded = load_gan(checkpoint, generator=generator, discriminator=discriminator, arch=arch,
                          generator_class=generator_class, generator_kwargs=generator_kwargs,
                          discriminator_class=discriminator_class, discriminator_kwargs=discriminator_kwargs,
                          d_output=d_output, trust=trust_checkpoint, verify=not no_verify)
        settings = resolve_settings(loaded, bn=bn, d_output=d_output, g_loss=g_loss, g_optimizer=g_optimizer,
                                    fresh_optimizer=fresh_optimizer)
        cfg = configured(cfg, settings, loaded.train_config)
        kind = settings["kind"].value
        if kind == "critic" and real is None:
            raise ValueError(f"D is a critic (kind=critic, from the {settings['kind'].source}): its threshold is "
                             f"calibrated on real samples; pass --data")
        dev = ctx.device(device)
        loaded.G.to(dev)
        loaded.D.to(dev)
        scorer_options = scorer_options_for(loaded, settings)
        for note in loaded.notes if ctx.is_main else ():
            click.echo(f"note: {note}", err=True)
        if settings["kind"].source == "detected" and ctx.is_main:
            click.echo("note: D ends in nn.Sigmoid: scored as kind='prob' (the Sigmoid's input is the logit); "
                       "pass --d-output logit to score its output as it is", err=True)
        if ctx.is_main:
            click.echo(f"note: audit settings: {describe(settings)}", err=True)
        name = (checkpoint or generator or Path("audit")).resolve()
        out_dir = out or Path("reports") / (name.parent.name if name.name == "checkpoint.pt" else name.stem)

        snapshots_dir = None
        total = 0
        if snapshot_selection is not None:
            from ganrobust.run_audit import parse_selection
            from ganrobust.snapshots import persisted_steps

            snapshots_dir = Path(checkpoint or ".")  # a run directory: checked by _checked_options
            total = len(parse_selection(snapshot_selection, persisted_steps(snapshots_dir)))

        def audit_checkpoint() -> dict[str, Any]:
            bar = _progress(7 if robust_d else 6)
            try:
                measured = audit_gan(loaded.G, loaded.D, scorer_options=scorer_options,
                                     latent_shape=loaded.latent_shape,
                                     opt_state=None if fresh_optimizer else loaded.optimizer_g,
                                     opt_class=settings["optimizer"].value, cfg=cfg, real=real, progress=bar,
                                     robust_d_steps=robust_d)
            except BaseException:
                bar.bar.close()  # ends the bar's line where it stopped, before the error is printed
                raise
            bar.close()
            return measured

        from tqdm import tqdm

        from ganrobust.run_audit import audit_sharded

        # item 0 is the checkpoint's audit, the persisted steps follow; item i runs on rank i mod world
        with tqdm(total=total, desc="snapshots", unit="step", file=sys.stderr, dynamic_ncols=True,
                  disable=not total or not ctx.is_main) as sbar:
            measured, snapshots = audit_sharded(audit_checkpoint, snapshots_dir, loaded, out_dir,
                                                selection=snapshot_selection, cfg=cfg, scorer_options=scorer_options,
                                                tick=lambda _s: sbar.update(1), verify=not no_verify, real=real,
                                                ctx=ctx)
    except RankFailed as err:
        fail(f"{err}; the audit stopped on every rank (finished snapshot steps are kept: rerun to resume)")
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    except RuntimeError as err:  # a model that cannot run on its own generator's output, shapes, devices
        fail(f"running the models failed: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}; "
             f"check that G's output fits D (--arch, --generator-class) and --device")
    if not ctx.is_main:  # rank 0 alone writes the report and prints
        return
    report = {
        "schema": REPORT_SCHEMA, "kind": "audit",
        "source": {"checkpoint": str(checkpoint) if checkpoint else None,
                   "generator": str(generator) if generator else None,
                   "discriminator": str(discriminator) if discriminator else None,
                   "format": loaded.source, "notes": loaded.notes,
                   "settings": {key: setting.to_dict() for key, setting in settings.items()},
                   "replay": "checkpoint optimizer state" if loaded.optimizer_g and not fresh_optimizer
                   else f"fresh {settings['optimizer'].value}(lr={cfg.g_lr}, betas={cfg.g_betas})"},
        "config": config_dict(cfg), "score": {**scorer_options, "bounds": list(loaded.bounds)},
        "versions": environment(), "command": " ".join(["ganrobust", *sys.argv[1:]]),
        "seconds": time.time() - started,
        **{k: v for k, v in measured.items() if k not in ("samples", "images")},
    }
    report["odena"]["verdicts"] = verdicts(report)
    if snapshots is not None:
        report["snapshots"] = snapshots
    if checkpoint is not None and checkpoint.is_dir() and (checkpoint / "steps.jsonl").exists():
        from ganrobust.reporting import training_rows
        from ganrobust.runs import read_run

        report["training"] = training_rows(read_run(checkpoint))
    report["title"] = str(checkpoint or generator)
    index = write_report(out_dir, report, measured["samples"], measured["images"])
    for diagnostic in report.get("diagnostics") or []:
        click.echo(f"warning: [{diagnostic['code']}] {diagnostic['message']}", err=True)
    click.echo(f"wrote {index} (+ report.json, summary.md, samples.npz) in {time.time() - started:.0f} s", err=True)
    if as_json:
        from ganrobust.runs import to_jsonable

        click.echo(json.dumps(to_jsonable(report["summary"]), indent=2))
    else:
        s = report["summary"]
        click.echo(f"accidental-attack rate {_fmt(s['aar'])}; flip rate {_fmt(s['flip_rate'])} vs random-direction "
                   f"control {_fmt(s['noise_flip_rate'])}", err=True)


def _checked_options(*, checkpoint: Path | None, data: str | None, d_output: str | None, seed: int, n_probes: int,
                     eps: float, k_steps: int, g_loss: str | None, g_lr: float, g_betas: str,
                     g_optimizer: str | None, snapshot_selection: str | None, robust_d: int, device: str) -> Any:
    """The audit's config from the options; ValueError (one line, with the fix) for any bad option or
    combination, before anything is loaded or trained."""
    import torch

    from ganrobust.audit import AuditConfig, optimizer_class

    cfg = AuditConfig(n_probes=n_probes, eps=eps, k_steps=k_steps, g_lr=g_lr, g_betas=parse_pair(g_betas, "--g-betas"),
                      seed=seed, **({"g_loss": g_loss} if g_loss else {}))
    if robust_d < 0:
        raise ValueError(f"expected --robust-d >= 0 steps, got {robust_d}")
    if robust_d and data is None:
        raise ValueError("--robust-d needs real samples to train the robust D on: pass --data")
    if d_output == "critic" and data is None:
        raise ValueError("--d-output critic needs real samples to calibrate the critic's threshold: pass --data")
    if snapshot_selection is not None and (checkpoint is None or not checkpoint.is_dir()):
        raise ValueError(f"--snapshots needs a run directory written by ganrobust.watch, got "
                         f"{str(checkpoint) if checkpoint else 'no checkpoint'}")
    if g_optimizer is not None:
        optimizer_class(g_optimizer)
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f"expected --device cpu, cuda or cuda:N, got {device!r}") from None
    return cfg


def _fmt(est: dict[str, Any]) -> str:
    if not est["n"]:
        return "n/a (no fake-classified probe)"
    return f"{est['value']:.1%} [{est['ci_low']:.1%}, {est['ci_high']:.1%}] (n={est['n']})"


class _progress:
    """A tqdm bar over the audit's stages, on stderr."""

    def __init__(self, stages: int) -> None:
        from tqdm import tqdm

        self.stages = stages
        self.bar = tqdm(total=stages, desc="audit", unit="stage", file=sys.stderr, dynamic_ncols=True)
        self.first = True

    def __call__(self, message: str) -> None:
        if not self.first:
            self.bar.update(1)
        self.first = False
        self.bar.set_postfix_str(message)

    def close(self) -> None:
        self.bar.update(self.stages - self.bar.n)
        self.bar.close()
