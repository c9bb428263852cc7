"""``ganrobust report``: HTML, Markdown and JSON from a run directory or an audit directory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ganrobust.cli.common import fail


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write [default: the audit directory, or RUN/report/].")
def report(directory: Path, out: Path | None) -> None:
    """Write index.html (self-contained), summary.md and report.json for DIRECTORY.

    DIRECTORY is an audit or compare output (it has report.json: the page is rendered again) or a run
    directory written by ganrobust.watch (the measured steps over training are reported;
    run `ganrobust audit RUN` for the replay, Odena's arguments and the robustness sweep).
    """
    from ganrobust.reporting import load_report, training_rows, write_compare_report, write_report
    from ganrobust.runs import read_run

    try:
        if (directory / "report.json").exists():
            data, samples = load_report(directory)
            if data.get("kind") == "compare":
                from ganrobust.compare import restate, verdicts

                if restate(data):
                    click.echo("note: a comparison written before pooled persistence and the minimum-n rules: its "
                               "means, persistence and differences were recomputed from its per-step rows", err=True)
                data["verdicts"] = verdicts(data)  # sentences follow the numbers, rendered by this version
                index = write_compare_report(out or directory, data, samples)
            else:
                index = write_report(out or directory, data, samples)
        else:
            run = read_run(directory)
            for problem in run.problems:
                click.echo(f"note: {problem}", err=True)
            if not run.steps:
                fail(f"{directory} has no measured step yet; nothing to report")
            rows = training_rows(run)
            last = run.steps[-1].raw["probe"]
            data = {"schema": "ganrobust.report/1", "kind": "run", "title": str(directory),
                    "source": {"run": str(directory), "format": "run directory", "replay": "measured during training"},
                    "summary": last, "training": rows, "score": {**run.manifest.get("score", {}),
                                                                   "bounds": run.manifest.get("data_range")},
                    "config": run.manifest.get("config"), "versions": {"ganrobust": run.manifest.get("ganrobust"),
                                                                       "torch": run.manifest.get("torch")},
                    "command": " ".join(["ganrobust", *sys.argv[1:]]), "problems": run.problems}
            if run.steps[-1].raw.get("by_class"):  # a conditional GAN: the last step's rates by class
                data["by_class"] = run.steps[-1].raw["by_class"]
            index = write_report(out or directory / "report", data, run.samples(run.steps[-1].step))
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    click.echo(str(index))
