"""``ganrobust env``: versions and hardware for bug reports."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of aligned lines.")
def env(as_json: bool) -> None:
    """Print versions of Python, torch, numpy, torchattacks, foolbox, the device and threads,
    the CPU capability and bf16/fp16 flags, and the attack search precision they resolve to.

    Paste the output into bug reports: attack numbers depend on all of them.
    """
    from ganrobust.environment import environment

    info = environment()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {'not installed' if value is None else value}")
