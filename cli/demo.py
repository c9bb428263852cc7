"""``ganrobust demo``: the whole tool on built-in data, on the CPU, in minutes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ganrobust.config import PRECISION


@click.command()
@click.option("--steps", type=int, default=600, show_default=True, help="Generator steps of the small DCGAN.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--every", type=int, default=25, show_default=True, help="Measure every N-th generator update.")
@click.option("--robust-d", "robust_d", type=int, default=100, show_default=True,
              help="Fine-tune an adversarially trained copy of the final D for this many steps and measure the same "
                   "replayed update against both (0 skips it).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=PRECISION, show_default=True,
              help="Precision of attack searches (auto: bf16 where the hardware runs it natively); results are verified in float32.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/demo"), show_default=True)
def demo(steps: int, seed: int, device: str, every: int, robust_d: int, precision: str, out: Path) -> None:
    """Train a small DCGAN on the built-in shapes data with ganrobust.watch on, audit its final
    checkpoint, and write the report to --out (index.html, summary.md, report.json).

    Nothing is downloaded. D is scored with batch statistics (bn='batch'): the demo's loop, like
    pytorch/examples, keeps D in train mode during G's step, so that is the D G optimises against.
    """
    import torch

    from ganrobust.audit import REPORT_SCHEMA, AuditConfig, audit_gan, config_dict, verdicts
    from ganrobust.cli.common import fail
    from ganrobust.config import WatchConfig
    from ganrobust.environment import environment
    from ganrobust.overtraining import run_headline
    from ganrobust.reporting import training_rows, write_report
    from ganrobust.runs import read_run
    from ganrobust.train import TrainConfig, train

    started = time.time()
    if steps < 1 or every < 1 or robust_d < 0:
        fail(f"expected --steps >= 1, --every >= 1 and --robust-d >= 0, got {steps}, {every} and {robust_d}")
    try:
        torch.device(device)
    except RuntimeError:
        fail(f"unknown --device {device!r}; use cpu or cuda")
    cfg = TrainConfig(steps=steps, seed=seed, device=device)
    run_dir = out / "run"
    if (run_dir / "manifest.json").exists():  # the demo regenerates everything under --out
        import shutil

        click.echo(f"replacing the previous demo run in {run_dir}", err=True)
        shutil.rmtree(run_dir)
    click.echo(f"training a DCGAN-32 on shapes for {steps} steps with ganrobust.watch on -> {run_dir}", err=True)
    audit_cfg = AuditConfig(seed=seed, precision=precision)
    try:  # train() closes its progress bar before an error leaves it, so the error line stands alone
        result = train(cfg, run_dir=run_dir, progress=True,
                       watch_config=WatchConfig(every=every, bn="batch", seed=seed, snapshot_every=max(every, 100),
                                                   precision=precision))
        click.echo("auditing the final checkpoint", err=True)
        measured = audit_gan(result.G, result.D, scorer_options={"bn": "batch"}, latent_shape=(cfg.nz, 1, 1),
                             opt_state=result.opt_g.state_dict(), opt_class="Adam", cfg=audit_cfg,
                             real=result.data.x, robust_d_steps=robust_d)
    except (ValueError, FloatingPointError) as err:
        fail(str(err))
    except (RuntimeError, AssertionError) as err:
        fail(f"running the models failed: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}; "
             f"check --device")
    run = read_run(run_dir)
    rows = training_rows(run)
    report = {
        "schema": REPORT_SCHEMA, "kind": "demo", "title": "demo: DCGAN-32 on shapes",
        "source": {"run": str(run_dir), "format": "ganrobust demo", "replay": "the trainer's Adam state"},
        "config": {"train": cfg.to_dict(), "audit": config_dict(audit_cfg), "watch": run.manifest.get("config")},
        "score": {"kind": "logit", "bn": "batch", "bounds": list(result.data.bounds)},
        "versions": environment(), "command": " ".join(["ganrobust", *sys.argv[1:]]) or "ganrobust demo",
        "training": rows,
        # the question is "how often, over training": the run first, the final replay beneath
        "run_headline": run_headline(rows),
        **{k: v for k, v in measured.items() if k not in ("samples", "images")},
    }
    report["odena"]["verdicts"] = verdicts(report)
    report["seconds"] = time.time() - started
    index = write_report(out, report, measured["samples"], measured["images"])
    click.echo(f"done in {time.time() - started:.0f} s", err=True)
    click.echo(str(index))
