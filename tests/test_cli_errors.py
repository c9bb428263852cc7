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
