"""``ganrobust compare``: line runs up — accidental attacks, D's robustness and sample quality."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ganrobust.cli.common import checked_device, choice, fail
from ganrobust.config import COMPARE_OUT, DEVICE, CompareConfig
from ganrobust.conventions import BatchNormMode
from ganrobust.errors import InputError, cli_text


@click.command()
@click.argument("runs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=COMPARE_OUT, show_default=True)
@click.option("--label", "labels", multiple=True, help="A name per run, in order (repeat the option) [default: directory names].")
@click.option("--arm", "arm_specs", multiple=True, metavar="NAME=RUN,RUN,...",
              help="An arm: runs (one per seed) of one method, named NAME; repeat per arm, the first is the baseline. "
                   "Adds means over seeds with Student-t intervals and Welch differences between arms.")
@click.option("--data", help="Real samples to score against (shapes, 8gaussians, digits, or an .npz with 'y' labels) "
                             "[default: the data the runs recorded].")
@click.option("--quality-samples", type=int, default=CompareConfig.quality_samples, show_default=True,
              help="Generated samples per quality score (images: capped by the held-out reference set).")
@click.option("--robustness-samples", type=int, default=CompareConfig.robustness_samples, show_default=True,
              help="Samples attacked per direction at each snapshot.")
@click.option("--eps", type=float, default=CompareConfig.eps, show_default="8/255",
              help="linf budget of the reported attack success rate, as a fraction of the data range.")
@click.option("--bn", type=choice(BatchNormMode, exclude=(BatchNormMode.AUTO,)), help="How D's BatchNorm scores [default: as each run recorded].")
@click.option("--classifier-steps", type=int, default=CompareConfig.classifier_steps, show_default=True,
              help="Training steps of the feature-space classifier (image data).")
@click.option("--seed", type=int, default=CompareConfig.seed, show_default=True)
@click.option("--device", default=DEVICE, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON on stdout.")
@click.option("--no-verify", is_flag=True, help="Read run files even where they differ from the SHA-256 their manifest "
              "recorded (corrupted or edited since the run wrote them).")
def compare(runs: tuple[Path, ...], out: Path, labels: tuple[str, ...], arm_specs: tuple[str, ...], data: str | None,
            quality_samples: int,
            robustness_samples: int, eps: float, bn: str | None, classifier_steps: int, seed: int, device: str,
            as_json: bool, no_verify: bool) -> None:
    """Compare two or more runs written by ganrobust.watch (e.g. `ganrobust train`), the first
    being the baseline:

    \b
      ganrobust compare runs/shapes-standard-s0 runs/shapes-pgd-s0 --out reports/std-vs-pgd

    or arms of several seeds each, the first arm being the baseline:

    \b
      ganrobust compare --arm standard=runs/digits-standard-s0,runs/digits-standard-s1,runs/digits-standard-s2 \\
                        --arm pgd=runs/digits-pgd-s0,runs/digits-pgd-s1,runs/digits-pgd-s2 --out reports/digits-standard-vs-pgd

    Over training: the accidental-attack rate with intervals (from the hook), D's robustness
    (median minimum linf eps*, both directions, at every persisted snapshot), and sample quality
    (8gaussians: modes covered and high-quality share; labelled images: a Fréchet distance in the
    features of a small classifier trained on the dataset's labels, offline). Writes index.html,
    summary.md, report.json (schema ganrobust.compare/1) and samples.npz to --out.
    """
    from tqdm import tqdm

    from ganrobust.data import load_dataset
    from ganrobust.distributed import RankFailed, init_from_env
    from ganrobust.pipeline.compare import compare_runs, sample_arrays
    from ganrobust.report.envelope import compare_report
    from ganrobust.report.files import write_compare_report
    from ganrobust.runs import to_jsonable

    started = time.time()
    try:
        ctx = init_from_env(device)  # under torchrun: join its process group (gloo on CPU, NCCL on GPU)
    except (ValueError, RuntimeError) as err:
        fail(f"joining the torch.distributed process group failed ({err}); check torchrun's MASTER_ADDR/MASTER_PORT")
    try:
        run_list, arms = _runs_and_arms(runs, arm_specs)
        cfg = CompareConfig(quality_samples=quality_samples, robustness_samples=robustness_samples, eps=eps, bn=bn,
                            classifier_steps=classifier_steps, seed=seed, verify=not no_verify)
        checked_device(device)
        dataset = None if data is None else load_dataset(data, seed=seed)
        bars: list[tqdm] = []  # opened at the first evaluation, so that bad input prints only its error

        def tick(message: str) -> None:
            if not bars and ctx.is_main:  # progress on rank 0 only
                bars.append(tqdm(desc="compare", unit="point", file=sys.stderr, dynamic_ncols=True))
            if bars:
                bars[0].update(1)
                bars[0].set_postfix_str(message)

        try:
            report = compare_runs(run_list, labels=list(labels) or None, arms=arms, data=dataset, cfg=cfg,
                                  device=str(ctx.device(device)), progress=tick, ctx=ctx)
        finally:
            for bar in bars:
                bar.close()
    except RankFailed as err:
        fail(f"{cli_text(err)}; the comparison stopped on every rank")
    except (InputError, FileNotFoundError) as err:  # anything else is a bug: cli.main shows its traceback
        fail(cli_text(err))
    if report is None:  # not rank 0: rank 0 alone writes the report and prints
        return
    samples = sample_arrays(report)
    report = compare_report(report, config=cfg.to_dict(), started=started,
                            command=" ".join(["ganrobust", *sys.argv[1:]]) or "ganrobust compare")
    index = write_compare_report(out, report, samples)
    for line in report["verdicts"]:
        click.echo(line, err=True)
    click.echo(f"wrote {index} (+ report.json, summary.md) in {time.time() - started:.0f} s", err=True)
    if as_json:
        click.echo(json.dumps(to_jsonable(report["differences"]), indent=2))
    else:
        click.echo(str(index))



def _runs_and_arms(runs: tuple[Path, ...], arm_specs: tuple[str, ...]) -> tuple[list[Path], list[str] | None]:
    """RUN arguments, or the runs of every ``--arm NAME=RUN,RUN`` with an arm name per run (not both)."""
    if runs and arm_specs:
        raise InputError("give runs either as arguments or with --arm NAME=RUN,RUN,..., not both")
    if not arm_specs:
        return list(runs), None
    paths: list[Path] = []
    arms: list[str] = []
    for spec in arm_specs:
        name, sep, rest = spec.partition("=")
        members = [m for m in rest.split(",") if m]
        if not sep or not name or not members:
            raise InputError(f"expected --arm NAME=RUN,RUN,..., got {spec!r}")
        if name in arms:
            raise InputError(f"arm {name!r} is given twice; list all its runs in one --arm")
        paths += [Path(m) for m in members]
        arms += [name] * len(members)
    return paths, arms
