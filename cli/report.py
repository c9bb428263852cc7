"""``ganrobust report``: HTML, Markdown and JSON from a run directory or an audit directory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ganrobust.cli.common import fail
from ganrobust.errors import InputError, cli_text


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write [default: the audit directory, or RUN/report/].")
def report(directory: Path, out: Path | None) -> None:
    """Write index.html (self-contained), summary.md and report.json for DIRECTORY.

    DIRECTORY is an audit or compare output (it has report.json: the page is rendered again) or a run
    directory written by ganrobust.watch (the measured steps over training are reported;
    run `ganrobust audit RUN` for the replay, Odena's arguments and the robustness sweep).
    """
    from ganrobust.report.envelope import rerendered, run_report
    from ganrobust.report.files import load_report, write_compare_report, write_report
    from ganrobust.runs import read_run

    try:
        if (directory / "report.json").exists():
            data, samples = load_report(directory)
            data, notes = rerendered(data)
            for line in notes:
                click.echo(f"note: {line}", err=True)
            write = write_compare_report if data.get("kind") == "compare" else write_report
            index = write(out or directory, data, samples)
        else:
            run = read_run(directory)
            for problem in run.problems:
                click.echo(f"note: {problem}", err=True)
            data = run_report(run, command=" ".join(["ganrobust", *sys.argv[1:]]))
            index = write_report(out or directory / "report", data, run.samples(run.steps[-1].step))
    except (InputError, FileNotFoundError) as err:  # anything else is a bug: cli.main shows its traceback
        fail(cli_text(err))
    click.echo(str(index))
