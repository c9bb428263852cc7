from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganrobust.cli.main import cli


def test_env_reports_versions_and_hardware() -> None:
    result = CliRunner().invoke(cli, ["env", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ("python", "torch", "numpy", "torchattacks", "foolbox", "device", "torch_threads"):
        assert key in info
    assert info["torchattacks"] and info["foolbox"]


def test_help_teaches_and_unknown_commands_exit_2() -> None:
    runner = CliRunner()
    assert "Problem 7" in runner.invoke(cli, ["--help"]).output
    assert runner.invoke(cli, ["no-such-command"]).exit_code == 2


def test_console_script_is_installed() -> None:
    beside = Path(sys.executable).parent / "ganrobust"  # the venv's bin, on PATH or not
    exe = str(beside) if beside.exists() else shutil.which("ganrobust")
    assert exe is not None
    proc = subprocess.run([exe, "env"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "torch" in proc.stdout


# -- ganrobust audit: what a new user sees ------------------------------------------------

def _one_error(result) -> str:
    """The run failed with exit 2 and exactly one stderr line starting with ``error:``, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.split("\n") if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.stderr
    return errors[0]


def _class_checkpoint(tmp_path: Path, G, D, g_kwargs: dict, d_kwargs: dict, g_cls: str, d_cls: str) -> list[str]:
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, tmp_path / "ckpt.pt")
    return [str(tmp_path / "ckpt.pt"), "--generator-class", g_cls, "--generator-kwargs", json.dumps(g_kwargs),
            "--discriminator-class", d_cls, "--discriminator-kwargs", json.dumps(d_kwargs)]


def _sigmoid_dcgan(tmp_path: Path) -> list[str]:
    from ganrobust.models import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(0)
    g_kwargs, d_kwargs = {"nz": 8, "ngf": 8, "nc": 3, "image_size": 32}, {"ndf": 8, "nc": 3, "image_size": 32, "sigmoid": True}
    D = DCGANDiscriminator(**d_kwargs)
    with torch.no_grad():  # logits clearly below 0 on G's samples (this seed's are all slightly above)
        D.main[-2].weight.mul_(-1000)
    return _class_checkpoint(tmp_path, DCGANGenerator(**g_kwargs), D, g_kwargs, d_kwargs,
                             "ganrobust.models:DCGANGenerator", "ganrobust.models:DCGANDiscriminator")


FAST = ["--n-probes", "16", "--k-steps", "1"]


def test_a_d_ending_in_sigmoid_is_scored_as_probabilities_with_a_note(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["audit", *_sigmoid_dcgan(tmp_path), "--out", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("note: D ends in nn.Sigmoid") and "pass --d-output logit" in line
               for line in result.stderr.splitlines())
    # notes are plain text: no parameter mark of ganrobust.errors.param left in them
    assert "\x1f" not in result.stderr and "\u001f" not in (tmp_path / "r" / "report.json").read_text()
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["score"]["kind"] == "prob"
    assert report["source"]["settings"]["kind"] == {"value": "prob", "from": "detected"}
    assert report["summary"]["n_fake"] > 0 and report["summary"]["flip_rate"]["n"] > 0  # rates, not n/a


def test_every_diagnostic_is_printed_on_stderr(tmp_path) -> None:
    args = ["audit", *_sigmoid_dcgan(tmp_path), "--out", str(tmp_path / "r"), *FAST, "--d-output", "logit"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    diagnostics = json.loads((tmp_path / "r" / "report.json").read_text())["diagnostics"]
    assert diagnostics  # a sigmoid head read as logits is one
    printed = [line for line in result.stderr.split("\n") if line.startswith("warning: [")]
    assert printed == [f"warning: [{d['code']}] {d['message']}" for d in diagnostics]


def test_an_error_during_the_audit_is_a_line_of_its_own(tmp_path) -> None:
    from ganrobust.models import MLPDiscriminator, MLPGenerator

    g_kwargs, d_kwargs = {"nz": 4, "hidden": 8, "dim": 3}, {"dim": 2, "hidden": 8}  # G's samples do not fit D
    args = _class_checkpoint(tmp_path, MLPGenerator(**g_kwargs), MLPDiscriminator(**d_kwargs), g_kwargs, d_kwargs,
                             "ganrobust.models:MLPGenerator", "ganrobust.models:MLPDiscriminator")
    result = CliRunner().invoke(cli, ["audit", *args, "--out", str(tmp_path / "r"), *FAST])
    assert "D cannot score G's samples" in _one_error(result)  # found before the audit starts


@pytest.mark.parametrize("args, words", [
    (["--robust-d", "5"], "--robust-d needs real samples"),
    (["--robust-d", "-1"], "--robust-d >= 0"),
    (["--d-output", "critic"], "pass --data"),
    (["--snapshots", "all"], "--snapshots needs a run directory"),
    (["--eps", "0"], "0 < eps <= 1"),
    (["--eps", "2"], "0 < eps <= 1"),
    (["--n-probes", "-3"], "n_probes >= 1"),
    (["--k-steps", "0"], "k_steps >= 1"),
    (["--g-lr", "-1"], "positive --g-lr"),
    (["--g-betas", "0.5"], "--g-betas expects two"),
    (["--g-betas", "0.5,1.5"], "--g-betas in [0, 1)"),
    (["--seed", "-1"], "--seed >= 0"),
    (["--g-optimizer", "Lion"], "--g-optimizer"),
    (["--g-optimizer", "LBFGS"], "cannot be replayed"),
    (["--device", "tpu9"], "--device"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_options_fail_before_any_work(tmp_path, args, words) -> None:
    # the checkpoint does not exist: an error about the option proves it was checked first
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "missing.pt"), *args, "--out", str(tmp_path / "r")])
    assert words in _one_error(result)


def test_audit_help_says_unset_options_follow_the_run() -> None:
    text = " ".join(CliRunner().invoke(cli, ["audit", "--help"]).output.split())
    for option in ("--bn", "--d-output", "--g-loss"):
        assert option in text
    assert text.count("as the run recorded") >= 2 and "--no-verify" in text and "--g-optimizer" in text


@pytest.mark.parametrize("args, words", [(["--lr", "-1"], "positive --lr"), (["--d-eps", "0"], "--d-eps"),
                                         (["--d-steps", "0"], "--d-steps >= 1"), (["--steps", "0"], "steps >= 1")])
def test_train_refuses_bad_options_before_training(tmp_path, args, words) -> None:
    short = [] if "--steps" in args else ["--steps", "2", "--data", "8gaussians"]  # bounded if not refused
    result = CliRunner().invoke(cli, ["train", *short, *args, "--out", str(tmp_path / "run")])
    assert words in _one_error(result)
    assert not (tmp_path / "run").exists()
