"""Nothing heavy at import: ``import ganrobust`` and a watched loop cost what ganrobust's own
modules cost. scipy, matplotlib, jinja2, foolbox, torchattacks and tensorboard load only in the
functions that use them (issue 22). Speed is measured in benchmarks/watch.py, not here: this
checks which modules a fresh interpreter has loaded."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "matplotlib", "jinja2", "foolbox", "torchattacks", "tensorboard", "torchvision")


def _loaded_after(code: str, tmp_path) -> set[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env={"GIT_PYTHON_REFRESH": "quiet", "PATH": "/usr/bin:/bin"})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_ganrobust_loads_nothing_heavy(tmp_path) -> None:
    loaded = _loaded_after("import ganrobust", tmp_path)
    assert "ganrobust" in loaded and "torch" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_watched_loop_loads_nothing_heavy(tmp_path) -> None:
    """The one added line, with measured steps and snapshots written, still loads none of them."""
    code = """
import torch
import ganrobust
from ganrobust.config import WatchConfig
from ganrobust.models import DCGANDiscriminator, DCGANGenerator
torch.manual_seed(0)
G, D = DCGANGenerator(nz=8, ngf=8, nc=3, image_size=32), DCGANDiscriminator(ndf=8, nc=3, image_size=32)
opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
w = ganrobust.watch(G, D, "run", config=WatchConfig(
    every=1, n_probes=8, snapshot_every=2, min_norm_every=1, min_norm_probes=2, efficiency_steps=2))
for _ in range(3):
    opt_d.zero_grad(); D(G(torch.randn(4, 8, 1, 1)).detach()).mean().backward(); opt_d.step()
    opt_g.zero_grad(); (-D(G(torch.randn(4, 8, 1, 1))).mean()).backward(); opt_g.step()
w.close()
assert sum('"kind": "step"' in line for line in open("run/steps.jsonl")) == 3
"""
    loaded = _loaded_after(code, tmp_path)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_median_ranks_without_scipy_equal_the_binomial_cdf() -> None:
    """The hook's median interval counts the binomial in integers; it equals scipy's cdf."""
    from scipy import stats

    from ganrobust.stats import median_ranks

    for n in [*range(1, 40), 256, 1001]:
        expected = None
        for k in range(1, n // 2 + 1):
            coverage = 1.0 - 2.0 * float(stats.binom.cdf(k - 1, n, 0.5))
            if coverage < 0.95:
                break
            expected = (k, coverage)
        got = median_ranks(n)
        assert (got is None) == (expected is None), n
        if got is not None:
            assert got[0] == expected[0] and abs(got[1] - expected[1]) < 1e-12, (n, got, expected)
