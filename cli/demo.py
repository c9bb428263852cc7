"""``ganrobust demo``: the whole tool on built-in data, on the CPU, in minutes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ganrobust.cli.common import choice
from ganrobust.config import DemoConfig
from ganrobust.conventions import Precision


@click.command()
@click.option("--steps", type=int, default=DemoConfig.steps, show_default=True, help="Generator steps of the small DCGAN.")
@click.option("--seed", type=int, default=DemoConfig.seed, show_default=True)
@click.option("--device", default=DemoConfig.device, show_default=True)
@click.option("--every", type=int, default=DemoConfig.every, show_default=True, help="Measure every N-th generator update.")
@click.option("--robust-d", "robust_d", type=int, default=DemoConfig.robust_d, show_default=True,
              help="Fine-tune an adversarially trained copy of the final D for this many steps and measure the same "
                   "replayed update against both (0 skips it).")
@click.option("--snapshot-every", "snapshot_every", type=int, default=DemoConfig.snapshot_every, show_default=True,
              help="Persist a snapshot every N generator steps; Odena's three arguments are replayed at each.")
@click.option("--precision", type=choice(Precision), default=DemoConfig.precision,
              show_default=True, help="Precision of attack searches (auto: bf16 where it times faster on this model and host); "
                                      "results are verified in float32.")
@click.option("--out", type=click.Path(path_type=Path), default=DemoConfig.out, show_default=True)
def demo(steps: int, seed: int, device: str, every: int, robust_d: int, snapshot_every: int, precision: str,
         out: Path) -> None:
    """Train a small DCGAN on the built-in shapes data with ganrobust.watch on, replay Odena's three
    arguments at its persisted snapshots and at its final checkpoint, and write the report to --out
    (index.html, summary.md, report.json).

    Nothing is downloaded. D's BatchNorm mode is observed at G's step (bn='auto'): the demo's loop, like
    pytorch/examples, keeps D in train mode then, so D scores with batch statistics, the D G optimises against.
    """
    from ganrobust.cli.common import checked_device, fail, watch_notices_as_notes
    from ganrobust.errors import InputError, cli_text
    from ganrobust.pipeline.demo import run_demo
    from ganrobust.report.files import write_report

    started = time.time()
    try:
        cfg = DemoConfig(steps=steps, seed=seed, device=device, every=every, robust_d=robust_d, precision=precision,
                         out=out, snapshot_every=snapshot_every)
        checked_device(device)
    except InputError as err:
        fail(cli_text(err))
    try:  # train() closes its progress bar before an error leaves it, so the error line stands alone
        with watch_notices_as_notes():
            demo_run = run_demo(cfg, command=" ".join(["ganrobust", *sys.argv[1:]]) or "ganrobust demo",
                                started=started, note=lambda line: click.echo(line, err=True))
    except (InputError, FloatingPointError) as err:  # anything else is a bug: cli.main shows its traceback
        fail(cli_text(err))
    index = write_report(out, demo_run.report, demo_run.samples, demo_run.images)
    click.echo(f"done in {time.time() - started:.0f} s", err=True)
    click.echo(str(index))
