"""Helpers every subcommand shares: one-line errors with exit status 2."""

from __future__ import annotations

from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2 (bad input), no traceback.

    Open progress bars are closed first, so the error is a line of its own, not the tail of a bar."""
    close_progress_bars()
    click.echo(f"error: {message.splitlines()[0] if message else 'unknown error'}", err=True)
    raise SystemExit(2)


def close_progress_bars() -> None:
    """Close every open tqdm bar (each ends its line)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def parse_pair(text: str, option: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{option} expects two comma-separated numbers like 0.5,0.999, got {text!r}") from None
    return a, b
