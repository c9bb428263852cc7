"""Reports as self-contained HTML: figures embedded as data URIs, styles inline, no external
request; Jinja2 with autoescaping, so a run named ``<script>`` shows as text."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape

from ganrobust.report import arguments_over_training as over_training
from ganrobust.report import figures
from ganrobust.report.text import (arms_text, fmt, persistence_text, compare_tables, headline_rows,
                                   run_headline_rows, section_tables)
from ganrobust.runs import to_jsonable


SECTIONS = ("headline", "training", "updates", "odena", "robustness", "images", "diagnostics", "configuration")
COMPARE_SECTIONS = ("runs", "differences", "training", "robustness", "quality", "configuration")


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
as fake, with a Clopper–Pearson 95% interval and its n.</p>

<section id="headline"><h2>Headline</h2>
{% if run_headline %}<p class="explain">Over the watched run: {{ run_method }}.</p>
<table id="run-headline"><tr><th>metric</th><th>value [95% interval] (n)</th><th>meaning</th></tr>
{% for row in run_headline %}<tr><td>{{ row.name }}</td><td>{{ row.value }}</td><td>{{ row.meaning }}</td></tr>
{% endfor %}</table>
<p class="explain">Beneath: the final replayed generator update against the D it was taken against.</p>
{% else %}<p class="explain">The replayed or measured generator update against the D it was taken against.</p>{% endif %}
<table><tr><th>metric</th><th>value [95% interval] (n)</th><th>meaning</th></tr>
{% for row in headline %}<tr><td>{{ row.name }}</td><td>{{ row.value }}</td><td>{{ row.meaning }}</td></tr>
{% endfor %}</table>
{% if intervals %}<p class="explain">Intervals:</p><ul id="intervals">{% for kind, text in intervals.items() %}
<li><strong>{{ kind }}</strong>: {{ text }}</li>{% endfor %}</ul>{% endif %}</section>

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
{% if over %}<h3>Over training</h3>
<p class="explain">At each of {{ over.rows|length }} persisted snapshots, against that snapshot's frozen D: k = 1 is the
update training took, k = 2..K replay G's recorded optimizer ({{ over.loss }} loss); the batch G's step used vs fresh
latents; a parameter-space attack of the update's size vs the real update. Bars: 95% intervals.</p>
<ul>{% for key, text in over.verdicts.items() %}<li><b>{{ key.replace('_', ' ') }}</b>: {{ text }}</li>{% endfor %}</ul>
{% for key, label in over_labels.items() %}{% if figs["over_" + key] %}<p class="explain">{{ label }}, over training</p>
<img alt="{{ label }} over training" src="data:image/png;base64,{{ figs["over_" + key] }}">{% endif %}
{% if over_tables[key]|length > 1 %}<table>{% for row in over_tables[key] %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% endfor %}<h3>The final checkpoint</h3>{% endif %}
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
{% for heading, rows in section_tables %}
<section class="section-table"><h2>{{ heading }}</h2><table><tr>{% for c in rows[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows[1:] %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table></section>{% endfor %}

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
    over = report.get("odena_over_training")
    if over:
        for key in over_training.LABELS:
            figs["over_" + key] = _b64(over_training.figure(over, key))
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
        robust_d=report.get("robust_d"), by_class=report.get("by_class"), fmt=fmt, run_headline=run_headline_rows(report.get("run_headline")),
        run_method=(report.get("run_headline") or {}).get("method", ""), intervals=report.get("intervals"),
        over=over, over_labels=over_training.LABELS, section_tables=section_tables(report),
        over_tables={key: over_training.table(over, key) for key in over_training.LABELS} if over else {},
        config=json.dumps(to_jsonable(config), indent=2))


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

{% if odena_tables %}<section id="odena-over-training"><h2>Odena's three arguments over training</h2>
<p class="explain">Per run, the mean over its persisted snapshots of each argument's difference (Student-t over
snapshots), against the baseline run (MOVER), and its course snapshot by snapshot; per arm, the mean over seeds and
the difference against the baseline arm (Welch t).</p>
{{ table(odena_tables.runs) }}{% if odena_tables.arms %}{{ table(odena_tables.arms) }}{{ table(odena_tables.arm_differences) }}{% endif %}</section>{% endif %}

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
                        f"{fmt(q['classifier_accuracy'])}); error bars: jackknife 95%. Dashed: real vs real at the "
                        f"same n, {fmt(q.get('floor'), False)} — the estimator's floor.")
    else:
        quality_text = (f"{q['n']} samples per point. High quality: within 3σ of a mode; covered: a mode holding at "
                        f"least 0.8% of the samples as high-quality ones (VEEGAN / PacGAN).")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    config = {k: report.get(k) for k in ("config", "versions", "seconds", "data", "methods")}
    return env.from_string(COMPARE_TEMPLATE).render(
        tables=compare_tables(report), odena_tables=over_training.compare_tables(report), figs=figs, arms_text=arms_text(report), persistence_text=persistence_text(report), verdicts=report.get("verdicts", []), quality=q,
        quality_text=quality_text, command=report.get("command", ""),
        notes=[f"{r['label']}: {n}" for r in runs for n in r.get("notes", [])] + ([q["note"]] if q.get("note") else []),
        config=json.dumps(to_jsonable(config), indent=2))
