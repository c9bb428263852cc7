"""The ``ganrobust`` click group. Each subcommand lives in its own module."""

from __future__ import annotations

import os
import sys

import click

from ganrobust import __version__
from ganrobust.cli.common import fail, report_bug
from ganrobust.cli.audit import audit
from ganrobust.cli.compare import compare
from ganrobust.cli.demo import demo
from ganrobust.cli.env import env
from ganrobust.cli.report import report
from ganrobust.cli.train import train
from ganrobust.errors import InputError, cli_text


class _Commands(click.Group):
    """Every subcommand runs here: an error about the user's input (:class:`ganrobust.errors.InputError`,
    a missing file) is one ``error:`` line and exit status 2; any other exception is a bug, shown with
    its traceback and a request for a report (exit status 1)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (InputError, FileNotFoundError) as err:
            fail(cli_text(err))
        except Exception as err:
            report_bug(err)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganrobust")
def cli() -> None:
    """Adversarial-robustness audits of GAN discriminators.

    Measures how often a generator update is an accidental attack on the discriminator it
    was taken against (Odena 2019, Open Questions about GANs, Problem 7).
    """
    import_from_cwd()


def import_from_cwd() -> None:
    """Class paths (``--generator-class models:Generator``) import from the working directory, as
    under ``python -m``: a console script's import path starts at its own bin folder instead."""
    cwd = os.getcwd()
    if not any(os.path.abspath(entry or ".") == cwd for entry in sys.path):
        sys.path.insert(0, cwd)


cli.add_command(audit)
cli.add_command(compare)
cli.add_command(demo)
cli.add_command(env)
cli.add_command(report)
cli.add_command(train)


def main() -> None:
    try:
        cli(prog_name="ganrobust")
    finally:  # under torchrun: leave the process group, or the exit may abort in gloo's threads
        from ganrobust.distributed import shutdown

        shutdown()


if __name__ == "__main__":
    main()
