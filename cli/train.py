"""``ganrobust train``: the reference trainer with ganrobust.watch on, writing a run directory."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ganrobust.cli.common import checked_device, choice, fail, watch_notices_as_notes
from ganrobust.config import ARCHS, D_LOSSES, D_TRAINING_METHODS, TRAINER_WATCH, TrainConfig
from ganrobust.conventions import BatchNormMode, Precision
from ganrobust.errors import InputError, cli_text


@click.command()
@click.option("--data", default=TrainConfig.data, show_default=True,
              help="shapes, 8gaussians, digits, an .npz/.npy file of samples in [-1, 1], or a folder of PNG/JPEG images "
                   "(class sub-folders give --conditional its labels).")
@click.option("--arch", type=choice(ARCHS), help="[default: mlp for 8gaussians, else dcgan]")
@click.option("--steps", type=int, default=TrainConfig.steps, show_default=True, help="Generator steps.")
@click.option("--d-training", type=choice(D_TRAINING_METHODS), default=TrainConfig.d_training,
              show_default=True, help="How D is trained (ganrobust.robust.RobustDLoss).")
@click.option("--d-eps", type=float, default=TrainConfig.d_eps, show_default="8/255",
              help="Adversarial budget of pgd / fgsm-rs (linf), as a fraction of the data range.")
@click.option("--d-steps", type=int, default=TrainConfig.d_steps, show_default=True, help="PGD steps per D update for --d-training pgd.")
@click.option("--d-gamma", type=float, default=TrainConfig.d_gamma, show_default=True, help="Weight of r1 / gp.")
@click.option("--loss", type=choice(D_LOSSES), default=TrainConfig.loss, show_default=True)
@click.option("--spectral-norm", is_flag=True, help="Spectral normalisation on D's layers.")
@click.option("--batch", type=int, default=TrainConfig.batch, show_default=True)
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True)
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True, help="Seeds the models, the data and every draw.")
@click.option("--every", type=int, default=TRAINER_WATCH.every, show_default=True, help="Measure every N-th generator update.")
@click.option("--snapshot-every", type=int, default=TRAINER_WATCH.snapshot_every, show_default=True,
              help="Persist D and G every N steps (what `compare` evaluates quality and robustness on).")
@click.option("--bn", type=choice(BatchNormMode), default=TRAINER_WATCH.bn.value, show_default=True,
              help="How D's BatchNorm scores in the measurements; auto: as observed on D at G's step (this loop "
                   "keeps D in train mode then, so batch statistics: the D that G optimises against).")
@click.option("--precision", type=choice(Precision), default=TrainConfig.precision,
              show_default=True, help="Precision of attack searches: the robust loss's PGD/FGSM and the hook's "
                                      "eps* and efficiency (auto: bf16 where it times faster on this model and host); every "
                                      "result the hook records is verified in float32.")
@click.option("--conditional", is_flag=True, help="A class-conditional DCGAN (G(z, y), projection D(x, y)) on the "
              "data's labels; rates are also reported by class.")
@click.option("--device", default=TrainConfig.device, show_default=True)
@click.option("--out", type=click.Path(path_type=Path),
              help="Run directory [default: runs/<data>-<d-training>-s<seed>]. Must not hold a run already.")
def train(data: str, arch: str | None, steps: int, d_training: str, d_eps: float, d_steps: int, d_gamma: float,
          loss: str, spectral_norm: bool, batch: int, lr: float, seed: int, every: int, snapshot_every: int,
          bn: str, precision: str, conditional: bool, device: str, out: Path | None) -> None:
    """Train a small GAN with ganrobust.watch on and write its run directory.

    The loop is pytorch/examples' DCGAN loop (an MLP pair on 8gaussians); --d-training swaps D's
    loss for an adversarially trained or regularised one, so the same run measures the
    accidental-attack rate. Line runs up with `ganrobust compare`:

    \b
      ganrobust train --d-training standard --out runs/std
      ganrobust train --d-training pgd --out runs/pgd
      ganrobust compare runs/std runs/pgd --out reports/std-vs-pgd
    """
    from ganrobust.data import load_dataset
    from ganrobust.runs.store import holds_run
    from ganrobust.train import train as run_training

    started = time.time()
    arch = arch or ("mlp" if data in ("8gaussians", "eight_gaussians", "ring") else "dcgan")
    out = out or Path("runs") / f"{Path(data).stem}-{d_training}-s{seed}"
    try:
        if holds_run(out):
            raise InputError(f"{out} already holds a run; pass another --out or remove it")
        if snapshot_every < 1:
            raise InputError(f"expected --snapshot-every >= 1, got {snapshot_every}")
        if lr <= 0:
            raise InputError(f"expected a positive --lr, got {lr}")
        if not 0 < d_eps <= 1:
            raise InputError(f"expected 0 < --d-eps <= 1 (a fraction of the data range), got {d_eps}")
        if d_steps < 1 or d_gamma < 0:
            raise InputError(f"expected --d-steps >= 1 and --d-gamma >= 0, got {d_steps} and {d_gamma}")
        checked_device(device)
        cfg = TrainConfig(arch=arch, data=data, steps=steps, batch=batch, lr=lr, loss=loss, spectral_norm=spectral_norm,
                          d_training=d_training, d_eps=d_eps, d_steps=d_steps, d_gamma=d_gamma, seed=seed,
                          device=device, precision=precision, conditional=conditional)
        watch = TRAINER_WATCH.replace(every=every, bn=bn, seed=seed, snapshot_every=snapshot_every, precision=precision)
        dataset = load_dataset(data, n=cfg.n_data, seed=seed, size=cfg.image_size)
        if arch == "dcgan" and dataset.x.dim() != 4:
            raise InputError(f"--arch dcgan needs image data; {data} has samples of shape {tuple(dataset.x.shape[1:])}: "
                             f"use --arch mlp")
        if arch == "mlp" and dataset.x.dim() != 2:
            raise InputError(f"--arch mlp needs vector data; {data} has samples of shape {tuple(dataset.x.shape[1:])}: "
                             f"use --arch dcgan")
        if conditional and dataset.y is None:
            raise InputError(f"--conditional needs labelled data; {data} has no labels (an image folder with one "
                             f"sub-folder per class, digits, shapes, or an .npz with y)")
    except (InputError, FileNotFoundError) as err:
        fail(cli_text(err))
    click.echo(f"training {arch} on {dataset.name} for {steps} steps, D: {d_training}, with ganrobust.watch on -> {out}",
               err=True)
    try:
        with watch_notices_as_notes():
            result = run_training(cfg, run_dir=out, watch_config=watch, data=dataset, progress=True)
    except FloatingPointError as err:
        fail(f"{cli_text(err)}; the partial run is kept in {out}. Lower --lr or change --loss")
    click.echo(f"done in {time.time() - started:.0f} s", err=True)
    click.echo(str(result.run_dir))
