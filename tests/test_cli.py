from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

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
