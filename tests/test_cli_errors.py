"""Errors about the user's input are one ``error:`` line with exit status 2; any other exception is
a bug in ganrobust and shows its traceback with a request for a report (``ganrobust env``), never
a line blaming the user's models or --device."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.errors import InputError
from ganrobust.runs.store import CheckpointError


def _checkpoint(tmp_path) -> list[str]:
    from ganrobust.models import MLPDiscriminator, MLPGenerator

    torch.manual_seed(0)
    g_kwargs, d_kwargs = {"nz": 2, "hidden": 8, "dim": 2}, {"dim": 2, "hidden": 8}
    torch.save({"G": MLPGenerator(**g_kwargs).state_dict(), "D": MLPDiscriminator(**d_kwargs).state_dict()},
               tmp_path / "ckpt.pt")
    return ["audit", str(tmp_path / "ckpt.pt"), "--generator-class", "ganrobust.models:MLPGenerator",
            "--generator-kwargs", json.dumps(g_kwargs), "--discriminator-class", "ganrobust.models:MLPDiscriminator",
            "--discriminator-kwargs", json.dumps(d_kwargs), "--n-probes", "8", "--k-steps", "1",
            "--out", str(tmp_path / "r")]


@pytest.mark.parametrize("bug", [RuntimeError("an index computed wrongly inside ganrobust"),
                                 ValueError("too many values to unpack (expected 2)"),
                                 KeyError("aar")], ids=lambda e: type(e).__name__)
def test_a_bug_in_ganrobust_shows_its_traceback_and_asks_for_a_report(tmp_path, monkeypatch, bug) -> None:
    import ganrobust.pipeline.audit as pipeline

    def broken(*_args, **_kwargs):
        raise bug

    monkeypatch.setattr(pipeline, "audit_gan", broken)  # the models load and fit; ganrobust's own code fails
    result = CliRunner().invoke(cli, _checkpoint(tmp_path))
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback (most recent call last)" in result.stderr and "in broken" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: internal error") and "ganrobust env" in last and "report" in last
    assert "running the models failed" not in result.stderr and "--device" not in last


def test_bad_input_is_still_one_line_and_exit_2(tmp_path, monkeypatch) -> None:
    import ganrobust.pipeline.audit as pipeline

    def refused(*_args, **_kwargs):
        raise InputError("expected X, got Y")

    monkeypatch.setattr(pipeline, "audit_gan", refused)
    result = CliRunner().invoke(cli, _checkpoint(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == ["error: expected X, got Y"]
    assert issubclass(CheckpointError, InputError) and issubclass(InputError, ValueError)


def test_a_device_this_machine_lacks_is_bad_input(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    result = CliRunner().invoke(cli, [*_checkpoint(tmp_path), "--device", "cuda"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sees no CUDA device" in result.stderr


def test_library_errors_name_the_parameter_and_the_cli_its_flag(tmp_path) -> None:
    """Issue 20: an API user reads ``pass real=``, the command line ``pass --data``, from one error."""
    from ganrobust.config import AuditConfig
    from ganrobust.measure.audit import audit_gan
    from ganrobust.models import MLPDiscriminator, MLPGenerator

    G, D = MLPGenerator(nz=2, hidden=8, dim=2), MLPDiscriminator(dim=2, hidden=8)
    with pytest.raises(InputError) as caught:
        audit_gan(G, D, scorer_options={"kind": "critic"}, latent_shape=(2,), cfg=AuditConfig(n_probes=8, k_steps=1))
    assert "pass real=" in str(caught.value) and "--" not in str(caught.value)
    assert caught.value.params == ("real",) and "pass --data" in caught.value.cli_message()
    result = CliRunner().invoke(cli, _checkpoint(tmp_path) + ["--d-output", "critic"])
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "pass --data" in last and "=" not in last.split("pass")[-1]


def test_no_library_error_names_a_command_line_flag() -> None:
    """Below the CLI an error names parameters (``ganrobust.errors.param``), never ``--flags``."""
    import ast
    import re
    from pathlib import Path

    import ganrobust
    import ganrobust.attacks

    flag = re.compile(r"(?<![\w-])--[a-z]")
    root = Path(ganrobust.__file__).parent
    found = []
    for path in sorted([*root.rglob("*.py"), *Path(ganrobust.attacks.__file__).parent.rglob("*.py")]):
        if path.is_relative_to(root) and "cli" in path.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                found += [f"{path.name}:{node.lineno}" for t in texts if flag.search(t)]
    assert not found, found
