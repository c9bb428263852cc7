"""Helpers every subcommand shares: one-line errors with exit status 2 for bad input, a traceback
and a request for a report for anything else (a bug)."""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from typing import Any, Iterator, NoReturn

import click

from ganrobust.errors import InputError


def choice(values: Any, *, exclude: tuple[Any, ...] = ()) -> click.Choice:
    """A ``click.Choice`` of an enum's values (or a tuple of names from ``ganrobust.config``), so a
    new member is a new choice everywhere; ``exclude`` leaves members out (``bn='auto'`` where
    nothing can be observed). tests/test_defaults.py checks that every choice list comes from here."""
    skip = {getattr(v, "value", v) for v in exclude}
    names = [getattr(v, "value", v) for v in values]
    return click.Choice([n for n in names if n not in skip])


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2 (bad input), no traceback.

    Open progress bars are closed first, so the error is a line of its own, not the tail of a bar."""
    close_progress_bars()
    click.echo(f"error: {message.splitlines()[0] if message else 'unknown error'}", err=True)
    raise SystemExit(2)


def report_bug(err: BaseException) -> NoReturn:
    """An exception that is not about the user's input: a bug in ganrobust (or a library under it).
    Its traceback, then one line asking for a report with ``ganrobust env``; exit status 1."""
    close_progress_bars()
    click.echo("".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip(), err=True)
    click.echo(f"error: internal error ({type(err).__name__}), a bug in ganrobust rather than in your input: please "
               f"report it with the traceback above, the command line and the output of `ganrobust env`", err=True)
    raise SystemExit(1)


def checked_device(device: str) -> str:
    """``--device`` as given, or InputError when torch cannot parse it or this machine lacks it."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"expected --device cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


@contextlib.contextmanager
def watch_notices_as_notes() -> Iterator[None]:
    """What ``ganrobust.watch`` tells about the loop (``WatchNotice``: D's observed BatchNorm mode) as
    ``note:`` lines on stderr, above an open progress bar; other warnings are shown as before."""
    from tqdm import tqdm

    from ganrobust.hook import WatchNotice

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, WatchNotice):
                tqdm.write(f"note: {message}", file=sys.stderr)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def close_progress_bars() -> None:
    """Close every open tqdm bar (each ends its line)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def parse_pair(text: str, option: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{option} expects two comma-separated numbers like 0.5,0.999, got {text!r}") from None
    return a, b
