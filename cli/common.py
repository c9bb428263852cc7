"""Helpers every subcommand shares: one-line errors with exit status 2."""

from __future__ import annotations

from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2 (bad input), no traceback."""
    click.echo(f"error: {message.splitlines()[0] if message else 'unknown error'}", err=True)
    raise SystemExit(2)


def parse_pair(text: str, option: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        fail(f"{option} expects two comma-separated numbers like 0.5,0.999, got {text!r}")
    return a, b
