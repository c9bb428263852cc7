"""Report writers: ``report.json`` (schema ``ganrobust.report/1``), ``summary.md`` for a terminal or
a pull request, and a self-contained ``index.html`` (figures embedded as data URIs, styles
inline, no external request; Jinja2 with autoescaping, so a run named ``<script>`` shows as
text). The run store and these writers are the only code that touches the file system.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jinja2 import Environment, select_autoescape

from ganrobust import figures
from ganrobust.runs import Run, to_jsonable

SECTIONS = ("headline", "training", "updates", "odena", "robustness", "images", "diagnostics", "configuration")


def _given(v: Any) -> bool:
    return v is not None and v == v  # None (JSON) and NaN (in memory) both mean "no interval"


def _fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
    """``value [low, high] (n=…)``; where no interval is given, why (below the minimum n, no
    variation); an exact coverage other than 95% is stated."""
    if not est or not est.get("n") or est.get("value") is None:
        return "n/a (n=0)"
    f = (lambda v: "inf" if v in ("inf", float("inf")) else f"{float(v):.1%}") if pct else \
        (lambda v: "inf" if v in ("inf", float("inf")) else f"{float(v):.3g}")
    lo, hi = est.get("ci_low"), est.get("ci_high")
    if _given(lo) and _given(hi):
        coverage = est.get("coverage")
        cov = f", coverage {float(coverage):.1%}" if coverage is not None and abs(float(coverage) - 0.95) > 5e-4 else ""
        return f"{f(est['value'])} [{f(lo)}, {f(hi)}] (n={est['n']}{cov})"
    return f"{f(est['value'])} (n={est['n']}; no interval: {est.get('note') or 'n too small'})"


HEADLINE = [
    ("aar", True, "accidental-attack rate",
     "share of fake-classified probes that the update turned real with linf(p) <= eps"),
    ("flip_rate", True, "flip rate", "share turned real, whatever the size of p"),
    ("noise_flip_rate", True, "random-direction control", "flips by a random perturbation of the same L2 size: the null"),
    ("ratio", False, "median ‖p‖∞ / eps*", "~1: the update is as efficient as the smallest attack"),
    ("cos_z", False, "median alignment z", "cos(p, ∇D)·sqrt(dim); ~N(0, 1) for random directions"),
    ("efficiency", False, "median efficiency", "score gain of the update / of L2 PGD within ‖p‖₂"),
]


def headline_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    return [{"name": name, "value": _fmt(summary.get(key), pct), "meaning": meaning}
            for key, pct, name, meaning in HEADLINE]


def _worst(w: dict[str, Any] | None) -> str:
    return "n/a" if not w else f"{_fmt(w)} at step {w['step']}"


def run_headline_rows(h: dict[str, Any] | None) -> list[dict[str, str]]:
    """The run headline (:func:`ganrobust.overtraining.run_headline`) as table rows; [] without one."""
    if not h:
        return []
    return [
        {"name": "mean accidental-attack rate", "value": _fmt(h["mean_aar"]),
         "meaning": f"mean over the {h['steps']} measured generator steps of each step's AAR"},
        {"name": "mean flip rate", "value": _fmt(h["mean_flip_rate"]), "meaning": "mean over the measured steps"},
        {"name": "steps with an accidental attack", "value": _fmt(h["steps_with_accidental_attack"]),
         "meaning": "share of measured steps in which at least one probe was accidentally attacked"},
        {"name": "worst step, AAR", "value": _worst(h.get("worst_aar")), "meaning": "the largest per-step AAR"},
        {"name": "worst step, flip rate", "value": _worst(h.get("worst_flip_rate")),
         "meaning": "the largest per-step flip rate"},
        {"name": "persistence of flips", "value": _fmt(h.get("persistence")),
         "meaning": "pooled share of flips D still calls real after its next update"},
    ]


def with_run_headline(report: dict[str, Any]) -> dict[str, Any]:
    """The report with a ``run_headline`` section when it carries training rows and has none yet."""
    if report.get("training") and not report.get("run_headline"):
        from ganrobust.overtraining import run_headline

        report = {**report, "run_headline": run_headline(report["training"])}
    return report


def summary_markdown(report: dict[str, Any]) -> str:
    lines = [f"# ganrobust {report.get('kind', 'audit')} report", ""]
    src = report.get("source", {})
    if src:
        lines += [f"Source: `{src.get('checkpoint') or src.get('generator') or src.get('run')}` "
                  f"({src.get('format', '')}); replay: {src.get('replay', 'n/a')}.", ""]
        sg = src.get("stylegan")
        if sg:
            lines += [f"StyleGAN snapshot: replayed the update of {sg['replayed']}; G_ema: {sg['G_ema']}; "
                      f"augmentation: {sg['augment']}.", ""]
    run_rows = run_headline_rows(report.get("run_headline"))
    if run_rows:
        lines += ["## Over the watched run", "", report["run_headline"].get("method", ""), "",
                  "| metric | value [95% interval] (n) | meaning |", "| --- | --- | --- |"]
        lines += [f"| {r['name']} | {r['value']} | {r['meaning']} |" for r in run_rows]
        lines += ["", "## The final replayed update", ""]
    lines += ["| metric | value [95% interval] (n) | meaning |", "| --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['value']} | {r['meaning']} |" for r in headline_rows(report["summary"])]
    if report.get("training"):
        last = report["training"][-1]
        lines += ["", f"Over training: {len(report['training'])} measured generator steps; last (step {last['step']}): "
                      f"flip rate {_fmt(last['flip_rate'])}, AAR {_fmt(last['aar'])}."]
    if report.get("by_class"):
        lines += ["", "## By class (conditional GAN: each probe is a (z, c) pair)", "",
                  "| class | probes | fake-classified | flip rate [95%] | AAR [95%] |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['class']} | {r['n']} | {r['n_fake']} | {_fmt(r['flip_rate'])} | {_fmt(r['aar'])} |"
                  for r in report["by_class"]]
    if report.get("odena"):
        lines += ["", "## Odena's three arguments", ""]
        lines += [f"* **{k.replace('_', ' ')}**: {v}" for k, v in report["odena"].get("verdicts", {}).items()]
    if report.get("robustness"):
        lines += ["", "## Robustness of D", "", "| norm | direction | eps (fraction of range) | success rate [95%] | n |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['norm']} | {r['direction']} | {r['eps']:.4g} | {r['success_rate']:.1%} "
                  f"[{r['ci_low']:.1%}, {r['ci_high']:.1%}] | {r['n']} |" for r in report["robustness"]
                  if r.get("success_rate") is not None]
    rob = report.get("robust_d")
    if rob:
        lines += ["", f"## The same update against an adversarially trained D ({rob['steps']} steps, {rob['method']})", "",
                  "| discriminator | flip rate | AAR | efficiency | alignment z | real called real |", "| --- | --- | --- | --- | --- | --- |"]
        for which in ("standard", "robust"):
            r = rob[which]
            lines.append(f"| {which} | {_fmt(r['flip_rate'])} | {_fmt(r['aar'])} | {_fmt(r['efficiency'], False)} | "
                         f"{_fmt(r['cos_z'], False)} | {_fmt(rob['real_called_real'][which])} |")
    if report.get("diagnostics"):
        lines += ["", "## Diagnostics", ""] + [f"* `{d['code']}`: {d['message']}" for d in report["diagnostics"]]
    lines += ["", f"Command: `{report.get('command', '')}`", ""]
    return "\n".join(lines)


# shared by every page; each template sets its own body width before it
STYLE = """h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
th { background: #f4f4f4; } .explain { color: #555; margin: .2em 0 .8em; } img { max-width: 100%; }
code, pre { background: #f6f6f6; padding: .1em .3em; } pre { padding: .6em; overflow-x: auto; }
</style></head><body>
"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganrobust report: {{ title }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; padding: 0 1em; }
""" + STYLE + """<h1>ganrobust report: {{ title }}</h1>
<p class="explain">How often is a generator update an <em>accidental attack</em> on the discriminator it was
taken against? (Odena 2019, Open Questions about GANs, Problem 7.) Every rate is over the probes D classifies
as fake, with a Wilson 95% interval and its n.</p>

<section id="headline"><h2>Headline</h2>
{% if run_headline %}<p class="explain">Over the watched run: {{ run_method }}.</p>
<table id="run-headline"><tr><th>metric</th><th>value [95% interval] (n)</th><th>meaning</th></tr>
{% for row in run_headline %}<tr><td>{{ row.name }}</td><td>{{ row.value }}</td><td>{{ row.meaning }}</td></tr>
{% endfor %}</table>
<p class="explain">Beneath: the final replayed generator update against the D it was taken against.</p>
{% else %}<p class="explain">The replayed or measured generator update against the D it was taken against.</p>{% endif %}
<table><tr><th>metric</th><th>value [95% interval] (n)</th><th>meaning</th></tr>
{% for row in headline %}<tr><td>{{ row.name }}</td><td>{{ row.value }}</td><td>{{ row.meaning }}</td></tr>
{% endfor %}</table></section>

<section id="training"><h2>Over training</h2>
{% if figs.training %}<p class="explain">Accidental-attack rate and flip rate per measured generator step, against
the random-direction control of the same size; shaded: 95% intervals.</p>
<img alt="AAR over training" src="data:image/png;base64,{{ figs.training }}">
{% else %}<p class="explain">No training run was watched for this report.</p>{% endif %}</section>

<section id="updates"><h2>Update size against the smallest attack</h2>
<p class="explain">If updates were accidental attacks, ‖p‖∞ would sit near eps*, the smallest perturbation that
flips D at the same sample.</p>
{% if figs.histogram %}<img alt="norm histogram" src="data:image/png;base64,{{ figs.histogram }}">{% endif %}</section>

<section id="odena"><h2>Odena's three arguments</h2>
{% if verdicts %}<ul>{% for key, text in verdicts.items() %}<li><b>{{ key.replace('_', ' ') }}</b>: {{ text }}</li>{% endfor %}</ul>{% endif %}
{% for key, label in [("one_step", "Argument 1: one step"), ("new_batch", "Argument 2: new batch"), ("param_space", "Argument 3: parameter space")] %}
{% if figs[key] %}<p class="explain">{{ label }}</p><img alt="{{ label }}" src="data:image/png;base64,{{ figs[key] }}">{% endif %}
{% endfor %}</section>

<section id="robustness"><h2>Robustness of D</h2>
<p class="explain">Attack success rate against budget, from one minimum-norm run verified by PGD at every grid point.</p>
{% if figs.robustness %}<img alt="robustness curves" src="data:image/png;base64,{{ figs.robustness }}">{% endif %}
{% if figs.robustness_training %}<p class="explain">Per audited snapshot: D's median minimum adversarial norm and its
success rate at each budget, over training.</p>
<img alt="robustness over training" src="data:image/png;base64,{{ figs.robustness_training }}">{% endif %}
<table><tr><th>norm</th><th>direction</th><th>eps (fraction)</th><th>success rate [95%]</th><th>n</th></tr>
{% for r in robustness %}<tr><td>{{ r.norm }}</td><td>{{ r.direction }}</td><td>{{ "%.4g"|format(r.eps) }}</td>
<td>{{ "%.1f"|format(100 * (r.success_rate or 0)) }}% [{{ "%.1f"|format(100 * (r.ci_low or 0)) }}, {{ "%.1f"|format(100 * (r.ci_high or 0)) }}]</td><td>{{ r.n }}</td></tr>
{% endfor %}</table></section>

{% if by_class %}<section id="by-class"><h2>By class</h2>
<p class="explain">A conditional GAN: every probe is a (z, c) pair; rates over each class's fake-classified probes.</p>
<table><tr><th>class</th><th>probes</th><th>fake-classified</th><th>flip rate [95%]</th><th>AAR [95%]</th></tr>
{% for r in by_class %}<tr><td>{{ r["class"] }}</td><td>{{ r.n }}</td><td>{{ r.n_fake }}</td><td>{{ fmt(r.flip_rate) }}</td>
<td>{{ fmt(r.aar) }}</td></tr>{% endfor %}</table></section>{% endif %}
{% if robust_d %}<section id="robust-d"><h2>The same update against an adversarially trained D</h2>
<p class="explain">{{ robust_d.steps }} fine-tuning steps ({{ robust_d.method }}); the replayed generator update is
measured against both discriminators.</p>
<table><tr><th>discriminator</th><th>flip rate</th><th>AAR</th><th>efficiency</th><th>alignment z</th><th>real called real</th></tr>
{% for which in ["standard", "robust"] %}<tr><td>{{ which }}</td><td>{{ fmt(robust_d[which].flip_rate) }}</td>
<td>{{ fmt(robust_d[which].aar) }}</td><td>{{ fmt(robust_d[which].efficiency, False) }}</td>
<td>{{ fmt(robust_d[which].cos_z, False) }}</td><td>{{ fmt(robust_d.real_called_real[which]) }}</td></tr>{% endfor %}
</table></section>{% endif %}

<section id="images"><h2>Samples</h2>
<p class="explain">x = G(z), x' after the update, the update p and the PGD perturbation δ within the same L2 norm,
both amplified to the full range.</p>
{% if figs.images %}<img alt="image grid" src="data:image/png;base64,{{ figs.images }}">{% else %}<p>Not image data.</p>{% endif %}</section>

<section id="diagnostics"><h2>Diagnostics</h2>
{% if diagnostics %}<table><tr><th>code</th><th>message</th><th>raised if</th><th>explanation</th></tr>
{% for d in diagnostics %}<tr><td><code>{{ d.code }}</code></td><td>{{ d.message }}</td><td>{{ d.raised_if }}</td><td>{{ d.explanation }}</td></tr>{% endfor %}
</table>{% else %}<p class="explain">None raised.</p>{% endif %}</section>

<section id="configuration"><h2>Configuration, versions, command</h2>
<p>Reproduce with: <code>{{ command }}</code></p>
<pre>{{ config }}</pre></section>
</body></html>
"""


def _b64(png: bytes | None) -> str | None:
    return None if png is None else base64.b64encode(png).decode()


def render_html(report: dict[str, Any], samples: dict[str, np.ndarray] | None) -> str:
    width = float(np.subtract(*reversed(report.get("score", {}).get("bounds", (-1.0, 1.0)))))
    figs: dict[str, str | None] = {}
    if report.get("training"):
        figs["training"] = _b64(figures.over_training(report["training"]))
    if samples is not None and "linf" in samples:
        figs["histogram"] = _b64(figures.norm_histogram(samples, width))
        figs["images"] = _b64(figures.image_grid(samples, tuple(report.get("score", {}).get("bounds", (-1.0, 1.0)))))
    odena = report.get("odena")
    if odena:
        figs["one_step"] = _b64(figures.one_step(odena))
        nb = odena["new_batch"]
        figs["new_batch"] = _b64(figures.bars({"trained batch": nb["trained_batch"], "fresh latents": nb["fresh_latents"]},
                                              "Argument 2: the batch the step was optimised on vs fresh latents"))
        ps = odena["param_space"]
        figs["param_space"] = _b64(figures.bars({"real update": ps["real_update"], "parameter attack": ps["parameter_attack"],
                                                 "pixel PGD": ps["pixel_pgd_same_norm"]},
                                                "Argument 3: parameter space vs pixel space, same size"))
    if report.get("robustness"):
        figs["robustness"] = _b64(figures.robustness(report["robustness"]))
    if report.get("snapshots"):
        figs["robustness_training"] = _b64(figures.robustness_over_training(report["snapshots"]))
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    config = {k: report.get(k) for k in ("config", "score", "source", "versions", "seconds")}
    return env.from_string(TEMPLATE).render(
        title=report.get("title", "audit"), headline=headline_rows(report["summary"]), figs=figs,
        verdicts=(odena or {}).get("verdicts", {}), robustness=report.get("robustness", []),
        diagnostics=report.get("diagnostics", []), command=report.get("command", ""),
        robust_d=report.get("robust_d"), by_class=report.get("by_class"), fmt=_fmt, run_headline=run_headline_rows(report.get("run_headline")),
        run_method=(report.get("run_headline") or {}).get("method", ""),
        config=json.dumps(to_jsonable(config), indent=2))


def write_report(out_dir: Path, report: dict[str, Any], samples: dict[str, np.ndarray] | None = None,
                 images: dict[str, torch.Tensor] | None = None) -> Path:
    """Write report.json, summary.md, samples.npz (when given) and index.html; returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = with_run_headline(report)
    arrays = dict(samples or {})
    for key, value in (images or {}).items():
        arrays[f"image_{key}"] = value.numpy() if isinstance(value, torch.Tensor) else value
    if arrays:
        np.savez_compressed(out_dir / "samples.npz", **arrays)
    (out_dir / "report.json").write_text(json.dumps(to_jsonable(report), indent=2))
    (out_dir / "summary.md").write_text(summary_markdown(report))
    (out_dir / "index.html").write_text(render_html(report, arrays or None))
    return out_dir / "index.html"



def training_rows(run: Run) -> list[dict[str, Any]]:
    """Per measured step of a watched run: the probe rates and persistence."""
    rows = []
    for record in run.steps:
        probe = record.raw["probe"]
        rows.append({"step": record.step, "aar": probe["aar"], "flip_rate": probe["flip_rate"],
                     "noise_flip_rate": probe["noise_flip_rate"], "cos_z": probe["cos_z"], "linf": probe["linf"],
                     "eps_star": probe["eps_star"], "d_steps": record.raw.get("d_steps"),
                     "persists": None if record.persists is None else record.persists.to_dict()})
    return rows


def load_report(directory: Path) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    report = json.loads((directory / "report.json").read_text())
    samples_path = directory / "samples.npz"
    samples = dict(np.load(samples_path)) if samples_path.exists() else None
    return report, samples


# -- comparisons (``ganrobust compare``, schema ganrobust.compare/1) ---------------------
COMPARE_SECTIONS = ("runs", "differences", "training", "robustness", "quality", "configuration")

def _num(est: dict[str, Any] | None, digits: str = ".3g") -> str:
    if not est or not est.get("n") or est.get("value") is None:
        return "n/a"
    f = lambda v: "inf" if v in ("inf", float("inf")) else (f"{v:{digits}}" if v is not None else "n/a")  # noqa: E731
    return f"{f(est['value'])} [{f(est.get('ci_low'))}, {f(est.get('ci_high'))}]"


def compare_tables(report: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The comparison's tables as rows of strings (header first), shared by Markdown and HTML."""
    runs = report["runs"]
    tables: dict[str, list[list[str]]] = {}
    tables["runs"] = [["run", "D training", "generator steps", "status", "directory"]] + [
        [r["label"], str((r.get("train_config") or {}).get("d_training", "n/a")),
         str((r.get("train_config") or {}).get("steps", "n/a")), str(r.get("status")), r["dir"]] for r in runs]
    tables["training"] = [["run", "measured steps", "mean AAR [95%]", "mean flip rate [95%]", "mean control [95%]",
                           "persistence of flips [95%] (n)"]] + [
        [r["label"], str(len(r["training"])), _fmt(r["mean_over_training"]["aar"]),
         _fmt(r["mean_over_training"]["flip_rate"]), _fmt(r["mean_over_training"]["noise_flip_rate"]),
         _fmt(r["mean_over_training"].get("persists"))] for r in runs]
    eps = report["config"]["eps"] * 255
    rob = [["run", "step", "real called real", "median eps* real->fake", f"real->fake success at {eps:.3g}/255",
            "fake called fake", "median eps* fake->real", f"fake->real success at {eps:.3g}/255"]]
    quality = [["run", "step"]]
    measure = report["quality"]["measure"]
    quality[0] += {"frechet": ["Fréchet distance [95%]", "classes covered", "class counts"],
                   "ring": ["modes covered (of 8)", "high-quality share [95%]", "mode KL"]}.get(measure, ["n/a"])
    for r in runs:
        final = next((p for p in reversed(r["points"]) if "error" not in p), None)
        if final is None:
            continue
        cells = [r["label"], str(final["step"])]
        for direction in ("real->fake", "fake->real"):
            d = final["robustness"].get(direction)
            cells += ["n/a"] * 3 if d is None else [_fmt(d["clean_accuracy"]), _num(d["median_eps_star"]),
                                                    _fmt(d["success_at_eps"])]
        rob.append(cells)
        q = final.get("quality")
        if q and measure == "frechet":
            quality.append([r["label"], str(final["step"]), _fmt(q["frechet"], False),
                            f"{q['classes_covered']} of {q['classes']}", str(q["class_counts"])])
        elif q and measure == "ring":
            quality.append([r["label"], str(final["step"]), str(q["modes_covered"]), _fmt(q["high_quality"]),
                            "n/a" if q["mode_kl"] is None or q["mode_kl"] != q["mode_kl"] else f"{q['mode_kl']:.3g}"])
    tables["robustness"] = rob
    if len(quality) > 1:
        tables["quality"] = quality
    if report.get("arms"):
        from ganrobust.overtraining import ARM_NUMBERS

        keys = [k for k in ARM_NUMBERS if any(k in a["numbers"] for a in report["arms"])]
        tables["arms"] = [["arm", "seeds (runs)"] + [f"{ARM_NUMBERS[k][0]} [95%] (n seeds)" for k in keys]] + [
            [a["name"], f"{a['seeds']} ({', '.join(a['runs'])})"]
            + [_fmt(a["numbers"].get(k), ARM_NUMBERS[k][1]) for k in keys] for a in report["arms"]]
        tables["arm_differences"] = [["arm − baseline"] + [f"{ARM_NUMBERS[k][0]} [95%]" for k in keys]] + [
            [f"{d['arm']} − {d['baseline']}"] + [_fmt(d.get(k), ARM_NUMBERS[k][1]) + (" *" if (d.get(k) or {}).get("significant") else "")
                                                 for k in keys] for d in report.get("arm_differences", [])]
    return tables


def _persistence_text(report: dict[str, Any]) -> str:
    """How the training table's numbers were computed, for this report's version."""
    method = (report.get("methods") or {}).get("persistence")
    steps = ("Means over the measured generator steps of each run (Student-t 95% intervals over steps; none below "
             "6 steps). " if method else
             "Means over the measured generator steps of each run (bootstrap 95% intervals over steps; report written "
             "before the minimum-n rule). ")
    return steps + (f"Persistence — {method.removeprefix('persistence: ')}; n = flips." if method else
            "Persistence: mean over steps with flips of the share of a step's flipped probes that D, after its next "
            "update, still calls real (report written before pooling).")


def _arms_text(report: dict[str, Any]) -> str:
    return (f"Each arm's runs are seeds of one method; {(report.get('methods') or {}).get('arms', '')}. "
            "Within-run numbers (intervals over steps or samples of one run) are in the tables below; "
            "* marks a difference whose interval excludes 0.")


def _md_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])] + \
        ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows[1:]]


def _by_class_lines(report: dict[str, Any]) -> list[str]:
    """Per-class flip rate and AAR at each conditional run's last measured step (none: no lines)."""
    runs = [r for r in report.get("runs", []) if r.get("by_class")]
    if not runs:
        return []
    lines = ["### By class (conditional runs, last measured step)", "",
             "| run | class | fake-classified | flip rate [95%] | AAR [95%] |", "| --- | --- | --- | --- | --- |"]
    for run in runs:
        lines += [f"| {run['label']} | {r['class']} | {r['n_fake']} | {_fmt(r['flip_rate'])} | {_fmt(r['aar'])} |"
                  for r in run["by_class"]]
    return lines + [""]


def compare_markdown(report: dict[str, Any]) -> str:
    tables = compare_tables(report)
    q = report["quality"]
    lines = ["# ganrobust comparison", "", *_md_table(tables["runs"]), ""]
    if "arms" in tables:
        lines += ["## Over seeds", "", _arms_text(report), "", *_md_table(tables["arms"]), "",
                  *_md_table(tables["arm_differences"]), ""]
    lines += [
             "## Accidental attacks over training", "",
             _persistence_text(report), "",
             *_md_table(tables["training"]), "",
             *_by_class_lines(report),
             "## D's robustness at the end", "",
             "Minimum linf perturbation eps* (fraction of the data range) that flips D, median over samples "
             "D classifies correctly, with a distribution-free 95% interval.", "", *_md_table(tables["robustness"]), ""]
    if "quality" in tables:
        lines += ["## Sample quality at the end", ""]
        if q["measure"] == "frechet":
            floor = q.get("floor") or {}
            lines += [f"Fréchet distance between {q['n']} generated and {q['n_reference']} held-out real samples in the "
                      f"64-d features of a classifier trained on the dataset's labels (held-out accuracy "
                      f"{_fmt(q['classifier_accuracy'])}); jackknife 95% intervals. Real vs real at the same n "
                      f"(the floor): {_fmt(floor, False)}.", ""]
        else:
            lines += [f"{q['n']} samples; high quality = within 3σ of a mode; a mode is covered by ≥ 0.8% of the "
                      f"samples (VEEGAN / PacGAN).", ""]
        lines += [*_md_table(tables["quality"]), ""]
    if q.get("note"):
        lines += [f"Note: {q['note']}", ""]
    lines += ["## Differences", ""] + [f"* {v}" for v in report.get("verdicts", [])] + [""]
    notes = [f"* {r['label']}: {n}" for r in report["runs"] for n in r.get("notes", [])]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += [f"Command: `{report.get('command', '')}`", ""]
    return "\n".join(lines)


COMPARE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganrobust comparison</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; padding: 0 1em; }
""" + STYLE + """<h1>ganrobust comparison</h1>
<p class="explain">Runs lined up on the same probes, real samples, feature space and attacks: how often generator
updates are accidental attacks, how robust D is, and what the samples look like, over training.</p>
{% macro table(rows) %}<table><tr>{% for c in rows[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows[1:] %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>{% endmacro %}
<section id="runs"><h2>Runs</h2>{{ table(tables.runs) }}</section>
{% if tables.arms %}<section id="arms"><h2>Over seeds</h2><p class="explain">{{ arms_text }}</p>
{{ table(tables.arms) }}{{ table(tables.arm_differences) }}</section>{% endif %}

<section id="differences"><h2>Differences</h2>
<p class="explain">Against the first run. Per-step rates: mean of the per-step differences over the measured steps both
runs share (Student-t over steps, none below 6 shared steps); end-of-run numbers and pooled persistence: MOVER
intervals from each run's own interval; arms: Welch t over seeds. Nothing without an interval is called significant.</p>
<ul>{% for v in verdicts %}<li>{{ v }}</li>{% endfor %}</ul></section>

<section id="training"><h2>Accidental attacks over training</h2>
<p class="explain">{{ persistence_text }}</p>
<img alt="AAR over training" src="data:image/png;base64,{{ figs.training }}">
{{ table(tables.training) }}</section>

<section id="robustness"><h2>D's robustness over training</h2>
<p class="explain">Median minimum linf perturbation eps* that flips D (fraction of the range; among samples D
classifies correctly), at every persisted snapshot and the end. Faint dots: the hook's own eps* on 16 probes.</p>
<img alt="robustness over training" src="data:image/png;base64,{{ figs.robustness }}">
{{ table(tables.robustness) }}</section>

<section id="quality"><h2>Sample quality over training</h2>
{% if figs.quality %}<p class="explain">{{ quality_text }}</p>
<img alt="quality over training" src="data:image/png;base64,{{ figs.quality }}">{{ table(tables.quality) }}
{% else %}<p class="explain">{{ quality.note or "No sample-quality measure applies." }}</p>{% endif %}
{% if figs.samples %}<p class="explain">Final samples, the same latents for every run.</p>
<img alt="samples" src="data:image/png;base64,{{ figs.samples }}">{% endif %}</section>

{% if notes %}<section id="notes"><h2>Notes</h2><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul></section>{% endif %}

<section id="configuration"><h2>Configuration, versions, command</h2>
<p>Reproduce with: <code>{{ command }}</code></p>
<pre>{{ config }}</pre></section>
</body></html>
"""


def render_compare_html(report: dict[str, Any], samples: dict[str, np.ndarray] | None) -> str:
    runs, q = report["runs"], report["quality"]
    bounds = tuple(report.get("bounds") or (-1.0, 1.0))
    figs = {"training": _b64(figures.compare_training(runs)), "robustness": _b64(figures.compare_robustness(runs)),
            "quality": _b64(figures.compare_quality(runs, q)),
            "samples": _b64(figures.compare_samples(samples or {}, [r["label"] for r in runs], bounds))}  # type: ignore[arg-type]
    if q["measure"] == "frechet":
        quality_text = (f"Fréchet distance between {q['n']} generated and {q['n_reference']} held-out real samples in "
                        f"the features of a classifier trained on the dataset's labels (held-out accuracy "
                        f"{_fmt(q['classifier_accuracy'])}); error bars: jackknife 95%. Dashed: real vs real at the "
                        f"same n, {_fmt(q.get('floor'), False)} — the estimator's floor.")
    else:
        quality_text = (f"{q['n']} samples per point. High quality: within 3σ of a mode; covered: a mode holding at "
                        f"least 0.8% of the samples as high-quality ones (VEEGAN / PacGAN).")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    config = {k: report.get(k) for k in ("config", "versions", "seconds", "data", "methods")}
    return env.from_string(COMPARE_TEMPLATE).render(
        tables=compare_tables(report), figs=figs, arms_text=_arms_text(report), persistence_text=_persistence_text(report), verdicts=report.get("verdicts", []), quality=q,
        quality_text=quality_text, command=report.get("command", ""),
        notes=[f"{r['label']}: {n}" for r in runs for n in r.get("notes", [])] + ([q["note"]] if q.get("note") else []),
        config=json.dumps(to_jsonable(config), indent=2))


def write_compare_report(out_dir: Path, report: dict[str, Any], samples: dict[str, np.ndarray] | None = None) -> Path:
    """Write report.json, summary.md, samples.npz (final samples per run) and index.html; returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples:
        np.savez_compressed(out_dir / "samples.npz", **samples)
    (out_dir / "report.json").write_text(json.dumps(to_jsonable(report), indent=2))
    (out_dir / "summary.md").write_text(compare_markdown(report))
    (out_dir / "index.html").write_text(render_compare_html(report, samples))
    return out_dir / "index.html"
