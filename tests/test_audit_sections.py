"""The audit is registered sections over one context: the progress bar counts the sections that
run, a registered section appears in the report, and measurement searches with the attack
objects it is given (a custom attack class included)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ganrobust.attacks.projected_gradient_descent import ProjectedGradientDescentAttack
from ganrobust.config import AuditConfig, ScoreSpec
from ganrobust.measure.audit import audit_gan
from ganrobust.measure.audit_context import AuditAttacks
from ganrobust.measure.sections import SECTIONS, Part, Rendering, Section, planned
from ganrobust.report.html import render_html
from ganrobust.report.text import summary_markdown

CFG = AuditConfig(n_probes=16, batch=8, k_steps=2, pgd_iterations=5, efficiency_steps=2, min_norm_probes=4,
                  eps_grid=(4 / 255,))


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh()), nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))


class _Plan:
    def __init__(self) -> None:
        self.total: int | None = None
        self.titles: list[str] = []

    def plan(self, total: int) -> None:
        self.total = total

    def __call__(self, title: str) -> None:
        self.titles.append(title)


def test_progress_total_is_the_number_of_sections_that_run() -> None:
    G, D = _pair()
    bar = _Plan()
    audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG, progress=bar)
    running = [s for s in SECTIONS if s.name not in ("robust_d", "conditions")]  # no --robust-d, unconditional
    assert bar.total == len(running) == len(bar.titles)
    assert bar.titles == [s.title for s in running]


def test_a_registered_section_appears_in_the_report() -> None:
    G, D = _pair()
    extra = Section("mean_score", "mean score", lambda ctx, parts: Part(
        {"mean_score": {"value": float(ctx.scorer.score(ctx.x).mean()), "n_fake": parts["update"].entries["update"]["n_fake"]}}))
    bar = _Plan()
    report = audit_gan(G, D, scorer_options=ScoreSpec(), latent_shape=(4,), cfg=CFG, sections=[*SECTIONS, extra],
                       progress=bar)
    assert report["mean_score"]["n_fake"] == report["update"]["n_fake"]
    assert list(report)[-3:] == ["mean_score", "samples", "images"]
    assert bar.titles[-1] == "mean score"
    assert "section_tables" not in audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG)  # built-ins: none


def test_a_registered_section_with_a_rendering_is_a_table_in_both_reports() -> None:
    """A new section's table reaches summary.md and index.html from report.json alone: no edit of report/."""
    G, D = _pair()
    rows = Section("score_quartiles", "score quartiles", lambda ctx, parts: Part({"score_quartiles": [
        {"q": q, "score": float(ctx.scorer.score(ctx.x).quantile(q))} for q in (0.25, 0.5, 0.75)]}),
        rendering=Rendering(heading="Score quartiles", table="score_quartiles"))
    report = audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG, sections=[*SECTIONS, rows])
    assert report["section_tables"] == [{"heading": "Score quartiles", "table": "score_quartiles"}]
    median = f"{report['score_quartiles'][1]['score']:.4g}"
    md = summary_markdown(report)
    assert "## Score quartiles" in md and "| q | score |" in md and f"| 0.5 | {median} |" in md
    html = render_html(report, None)
    assert "<h2>Score quartiles</h2>" in html and f"<td>{median}</td>" in html


class _CountingPGD(ProjectedGradientDescentAttack):
    """PGD that counts its searches: an attack class measurement knows nothing about."""

    searches = 0

    def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        type(self).searches += 1
        return super().search(*args, **kwargs)


def test_measurement_searches_with_the_attacks_it_is_given() -> None:
    G, D = _pair()
    default = AuditAttacks.of(CFG)
    pixel = _CountingPGD(norm="l2", steps=2, rel_stepsize=1.25, random_start=False, early_stop=False)
    attacks = dataclasses.replace(default, pixel=pixel)
    a = audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG, attacks=attacks)
    # argument 3's pixel PGD, the new batch's and argument 3's efficiency, the images
    assert _CountingPGD.searches >= 4
    b = audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG, attacks=default)
    assert a["odena"]["param_space"] == b["odena"]["param_space"]  # the same attack, the same numbers


def test_a_section_that_does_not_run_leaves_its_absent_entries() -> None:
    G, D = _pair()
    report = audit_gan(G, D, scorer_options={}, latent_shape=(4,), cfg=CFG)
    assert report["robust_d"] is None and "gan_call" not in report
    assert "robust_d" not in [s.name for s in planned_sections_for_plain_audit()]


def planned_sections_for_plain_audit() -> list[Section]:
    class _Ctx:
        robust_d_steps = 0

        class call:  # noqa: N801  (an unconditional adapter)
            conditional = False

    return planned(_Ctx(), SECTIONS)  # type: ignore[arg-type]
