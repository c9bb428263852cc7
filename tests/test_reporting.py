"""Reports: every section and figure present, names escaped, no external request, a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganrobust.cli.main import cli
from ganrobust.config import WatchConfig
from ganrobust.report.html import SECTIONS
from ganrobust.config import TrainConfig
from ganrobust.train import train


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rep")
    run = root / "<script>alert(1)"
    train(TrainConfig(steps=60, batch=32, nz=16, ngf=8, ndf=8, n_data=500), run_dir=run,
          watch_config=WatchConfig(every=10, n_probes=16, min_norm_every=2, min_norm_probes=4))
    out = root / "audit"
    result = CliRunner().invoke(cli, ["audit", str(run), "--out", str(out), "--n-probes", "32", "--k-steps", "3",
                                      "--data", "shapes"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    return root


def _external_references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?(?!data:|#)([a-z]+:|//)""", html, flags=re.I)


@pytest.mark.parametrize("which", ["audit", "run"])
def test_reports_have_every_section_escaped_names_and_no_external_reference(audited, which) -> None:
    directory = audited / "audit" if which == "audit" else next(audited.glob("<script>*")) / "report"
    html = (directory / "index.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert _external_references(html) == []
    assert html.count('src="data:image/png;base64,') >= (6 if which == "audit" else 2)
    report = json.loads((directory / "report.json").read_text())
    assert report["schema"] == "ganrobust.report/1"
    md = (directory / "summary.md").read_text()
    assert "accidental-attack rate" in md


def test_rendering_again_from_an_audit_directory(audited, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["report", str(audited / "audit"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "index.html").read_text() == (audited / "audit" / "index.html").read_text()


def test_report_on_a_missing_directory_is_a_clean_error(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.output.startswith("error: ")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs Debian's chromium)")
def test_a_real_browser_renders_every_section_and_figure(audited, tmp_path) -> None:
    page = (audited / "audit" / "index.html").resolve()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout, section
    assert dom.stdout.count("data:image/png;base64,") >= 6
    shot = tmp_path / "page.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1100,3000",
                               f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 50_000, done.stderr[-2000:]
    # every request the page made: with all hosts unresolvable, any attempt would be logged as a failed load
    assert "ERR_NAME_NOT_RESOLVED" not in done.stderr
