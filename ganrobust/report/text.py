"""Reports as text: estimates formatted with their intervals, the tables every page shows, and
``summary.md`` (for a terminal or a pull request) for audits, runs and comparisons."""

from __future__ import annotations

from typing import Any

from ganrobust import metrics


def _given(v: Any) -> bool:
    return v is not None and v == v  # None (JSON) and NaN (in memory) both mean "no interval"


def fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
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


def headline_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    """The headline table of an update's summary: the registry's ``headline`` view."""
    return [{"name": m.name, "value": fmt(summary.get(m.key), m.percent), "meaning": m.meaning}
            for m in metrics.view("headline")]


def _worst(w: dict[str, Any] | None) -> str:
    return "n/a" if not w else f"{fmt(w)} at step {w['step']}"


def run_headline_rows(h: dict[str, Any] | None) -> list[dict[str, str]]:
    """The run headline (:func:`ganrobust.measure.overtraining.run_headline`) as table rows; [] without one."""
    if not h:
        return []
    return [
        {"name": "mean accidental-attack rate", "value": fmt(h["mean_aar"]),
         "meaning": f"mean over the {h['steps']} measured generator steps of each step's AAR"},
        {"name": "mean flip rate", "value": fmt(h["mean_flip_rate"]), "meaning": "mean over the measured steps"},
        {"name": "steps with an accidental attack", "value": fmt(h["steps_with_accidental_attack"]),
         "meaning": "share of measured steps in which at least one probe was accidentally attacked"},
        {"name": "worst step, AAR", "value": _worst(h.get("worst_aar")), "meaning": "the largest per-step AAR"},
        {"name": "worst step, flip rate", "value": _worst(h.get("worst_flip_rate")),
         "meaning": "the largest per-step flip rate"},
        {"name": "persistence of flips", "value": fmt(h.get("persistence")),
         "meaning": "pooled share of flips D still calls real after its next update"},
    ]


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
                      f"flip rate {fmt(last['flip_rate'])}, AAR {fmt(last['aar'])}."]
    if report.get("by_class"):
        lines += ["", "## By class (conditional GAN: each probe is a (z, c) pair)", "",
                  "| class | probes | fake-classified | flip rate [95%] | AAR [95%] |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['class']} | {r['n']} | {r['n_fake']} | {fmt(r['flip_rate'])} | {fmt(r['aar'])} |"
                  for r in report["by_class"]]
    from ganrobust.report.arguments_over_training import markdown as over_training_markdown

    lines += over_training_markdown(report.get("odena_over_training"))
    if report.get("odena"):
        lines += ["", "## Odena's three arguments" + (" at the final checkpoint" if report.get("odena_over_training")
                                                      else ""), ""]
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
            lines.append(f"| {which} | {fmt(r['flip_rate'])} | {fmt(r['aar'])} | {fmt(r['efficiency'], False)} | "
                         f"{fmt(r['cos_z'], False)} | {fmt(rob['real_called_real'][which])} |")
    if report.get("diagnostics"):
        lines += ["", "## Diagnostics", ""] + [f"* `{d['code']}`: {d['message']}" for d in report["diagnostics"]]
    for heading, rows in section_tables(report):
        lines += ["", f"## {heading}", ""] + _md_table(rows)
    if report.get("intervals"):  # which kind of interval each number carries (reports written before: none)
        lines += ["", "## Intervals", ""] + [f"* **{k}**: {v}" for k, v in report["intervals"].items()]
    lines += ["", f"Command: `{report.get('command', '')}`", ""]
    return "\n".join(lines)


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
        [r["label"], str(len(r["training"])), fmt(r["mean_over_training"]["aar"]),
         fmt(r["mean_over_training"]["flip_rate"]), fmt(r["mean_over_training"]["noise_flip_rate"]),
         fmt(r["mean_over_training"].get("persists"))] for r in runs]
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
            cells += ["n/a"] * 3 if d is None else [fmt(d["clean_accuracy"]), _num(d["median_eps_star"]),
                                                    fmt(d["success_at_eps"])]
        rob.append(cells)
        q = final.get("quality")
        if q and measure == "frechet":
            quality.append([r["label"], str(final["step"]), fmt(q["frechet"], False),
                            f"{q['classes_covered']} of {q['classes']}", str(q["class_counts"])])
        elif q and measure == "ring":
            quality.append([r["label"], str(final["step"]), str(q["modes_covered"]), fmt(q["high_quality"]),
                            "n/a" if q["mode_kl"] is None or q["mode_kl"] != q["mode_kl"] else f"{q['mode_kl']:.3g}"])
    tables["robustness"] = rob
    if len(quality) > 1:
        tables["quality"] = quality
    if report.get("arms"):
        from ganrobust.measure.overtraining import ARM_NUMBERS

        keys = [k for k in ARM_NUMBERS if any(k in a["numbers"] for a in report["arms"])]
        tables["arms"] = [["arm", "seeds (runs)"] + [f"{ARM_NUMBERS[k][0]} [95%] (n seeds)" for k in keys]] + [
            [a["name"], f"{a['seeds']} ({', '.join(a['runs'])})"]
            + [fmt(a["numbers"].get(k), ARM_NUMBERS[k][1]) for k in keys] for a in report["arms"]]
        tables["arm_differences"] = [["arm − baseline"] + [f"{ARM_NUMBERS[k][0]} [95%]" for k in keys]] + [
            [f"{d['arm']} − {d['baseline']}"] + [fmt(d.get(k), ARM_NUMBERS[k][1]) + (" *" if (d.get(k) or {}).get("significant") else "")
                                                 for k in keys] for d in report.get("arm_differences", [])]
    return tables


def persistence_text(report: dict[str, Any]) -> str:
    """How the training table's numbers were computed, for this report's version."""
    method = (report.get("methods") or {}).get("persistence")
    steps = ("Means over the measured generator steps of each run (Student-t 95% intervals over steps; none below "
             "6 steps). " if method else
             "Means over the measured generator steps of each run (bootstrap 95% intervals over steps; report written "
             "before the minimum-n rule). ")
    return steps + (f"Persistence — {method.removeprefix('persistence: ')}; n = flips." if method else
            "Persistence: mean over steps with flips of the share of a step's flipped probes that D, after its next "
            "update, still calls real (report written before pooling).")


def arms_text(report: dict[str, Any]) -> str:
    return (f"Each arm's runs are seeds of one method; {(report.get('methods') or {}).get('arms', '')}. "
            "Within-run numbers (intervals over steps or samples of one run) are in the tables below; "
            "* marks a difference whose interval excludes 0.")


def section_tables(report: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """The tables of the audit sections without a hand-written layout (``report["section_tables"]``,
    a section's ``Rendering``): a heading, and a header row then one row per entry of its list of dicts."""
    out = []
    for t in report.get("section_tables") or []:
        entries = report.get(t["table"]) or []
        if entries:
            columns = list(entries[0])
            out.append((t["heading"], [columns] + [[_cell(e.get(c)) for c in columns] for e in entries]))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, dict) and "value" in v:
        return fmt(v, pct=False)
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
        lines += [f"| {run['label']} | {r['class']} | {r['n_fake']} | {fmt(r['flip_rate'])} | {fmt(r['aar'])} |"
                  for r in run["by_class"]]
    return lines + [""]


def compare_markdown(report: dict[str, Any]) -> str:
    tables = compare_tables(report)
    q = report["quality"]
    lines = ["# ganrobust comparison", "", *_md_table(tables["runs"]), ""]
    if "arms" in tables:
        lines += ["## Over seeds", "", arms_text(report), "", *_md_table(tables["arms"]), "",
                  *_md_table(tables["arm_differences"]), ""]
    lines += [
             "## Accidental attacks over training", "",
             persistence_text(report), "",
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
                      f"{fmt(q['classifier_accuracy'])}); jackknife 95% intervals. Real vs real at the same n "
                      f"(the floor): {fmt(floor, False)}.", ""]
        else:
            lines += [f"{q['n']} samples; high quality = within 3σ of a mode; a mode is covered by ≥ 0.8% of the "
                      f"samples (VEEGAN / PacGAN).", ""]
        lines += [*_md_table(tables["quality"]), ""]
    if q.get("note"):
        lines += [f"Note: {q['note']}", ""]
    from ganrobust.report.arguments_over_training import compare_markdown as arguments_markdown

    lines += arguments_markdown(report)
    lines += ["## Differences", ""] + [f"* {v}" for v in report.get("verdicts", [])] + [""]
    notes = [f"* {r['label']}: {n}" for r in report["runs"] for n in r.get("notes", [])]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += [f"Command: `{report.get('command', '')}`", ""]
    return "\n".join(lines)
