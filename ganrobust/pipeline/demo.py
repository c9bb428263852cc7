"""``ganrobust demo``: train a small DCGAN on the built-in shapes with the hook on, replay Odena's
three arguments at its persisted snapshots, audit its final checkpoint (with the robust-D swap), and
return the report — the whole tool, on the CPU, in minutes."""

from __future__ import annotations

from typing import Callable

from ganrobust.config import DemoConfig, ScoreSpec
from ganrobust.conventions import BatchNormMode
from ganrobust.measure.audit import audit_gan
from ganrobust.pipeline.audit import Audited
from ganrobust.pipeline.sweep import audit_run_snapshots
from ganrobust.runs.checkpoints import LoadedGAN
from ganrobust.report.envelope import demo_report
from ganrobust.runs import read_run
from ganrobust.runs.store import clear_snapshot_results, holds_run, remove_run
from ganrobust.train import train


def run_demo(cfg: DemoConfig, *, command: str, started: float, note: Callable[[str], None] = lambda _m: None
             ) -> Audited:
    """The demo under ``cfg`` (its run directory is ``cfg.out / "run"``, replaced if it exists).
    ValueError / FloatingPointError for a run that cannot be trained or audited."""
    train_cfg, audit_cfg = cfg.train(), cfg.audit()
    run_dir = cfg.out / "run"
    if holds_run(run_dir):  # the demo regenerates everything under --out
        note(f"replacing the previous demo run in {run_dir}")
        remove_run(run_dir)
    note(f"training a DCGAN-32 on shapes for {cfg.steps} steps with ganrobust.watch on -> {run_dir}")
    result = train(train_cfg, run_dir=run_dir, progress=True, watch_config=cfg.watch())
    note("Odena's three arguments at the persisted snapshots")
    loaded = LoadedGAN(G=result.G, D=result.D, source="ganrobust demo", latent_shape=(train_cfg.nz, 1, 1))
    clear_snapshot_results(cfg.out)  # the demo regenerates everything under --out: nothing to resume
    score = ScoreSpec(bn=BatchNormMode.BATCH)  # the trainer's D scores with batch statistics at G's step
    snapshots = audit_run_snapshots(run_dir, loaded, cfg.out, selection="all", cfg=audit_cfg, scorer_options=score)
    note("auditing the final checkpoint")
    measured = audit_gan(result.G, result.D, scorer_options=score, latent_shape=(train_cfg.nz, 1, 1),
                         opt_state=result.opt_g.state_dict(), opt_class="Adam", cfg=audit_cfg, real=result.data.x,
                         robust_d_steps=cfg.robust_d)
    run = read_run(run_dir)
    report = demo_report(measured, run=run, bounds=result.data.bounds, command=command, started=started,
                         snapshots=snapshots,
                         config={"train": train_cfg.to_dict(), "audit": audit_cfg.to_dict(),
                                 "watch": run.manifest.get("config")})
    return Audited(report, measured["samples"], measured["images"])
