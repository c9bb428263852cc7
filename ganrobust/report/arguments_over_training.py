"""The report's "Odena's three arguments over training" section: one figure per argument with the
generator step on the x-axis, the per-snapshot table and the verdicts (computed in
:mod:`ganrobust.measure.arguments_over_training`), for the HTML page and summary.md; and the same
arguments per run and per arm for ``compare``."""

from __future__ import annotations

from typing import Any

from ganrobust.report.figures import _errorbars, _png, plt
from ganrobust.report.text import fmt

LABELS = {"one_step": "Argument 1: one step", "new_batch": "Argument 2: new batch",
          "param_space": "Argument 3: parameter space"}
#: per argument: (key in the per-snapshot row, legend label, colour)
SERIES = {
    "one_step": (("flip_k1", "flip rate after k = 1 (the recorded update)", "tab:blue"),
                 ("flip_kK", "flip rate after k = K replayed steps", "tab:red"),
                 ("aar_kK", "AAR after k = K", "tab:orange")),
    "new_batch": (("trained", "flip rate on the training batch", "tab:red"),
                  ("fresh", "flip rate on fresh latents", "tab:blue")),
    "param_space": (("parameter_attack", "parameter-space attack, update's size", "tab:red"),
                    ("real_update", "real update", "tab:blue"),
                    ("pixel_pgd", "pixel L2 PGD, same pixel norm", "tab:gray")),
}


def figure(over: dict[str, Any], argument: str) -> bytes | None:
    """One argument's rates per persisted snapshot, with their 95% intervals."""
    rows = [r for r in over["rows"] if argument in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, label, color in SERIES[argument]:
        if argument == "one_step" and key != "flip_k1":
            label = label.replace("K", str(rows[0]["one_step"]["K"]))
        _errorbars(ax, steps, [r[argument][key] for r in rows], label, color)
    ax.set_xlabel("generator step (persisted snapshot)")
    ax.set_ylabel("share of fake-classified probes")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"{LABELS[argument]}, over training")
    return _png(fig)


def _iters(n: Any) -> str:
    return "—" if n is None else str(n)


def table(over: dict[str, Any], argument: str) -> list[list[str]]:
    """Header and one row per snapshot."""
    rows = [r for r in over["rows"] if argument in r]
    if argument == "one_step":
        K = rows[0]["one_step"]["K"] if rows else "K"
        head = ["step", "flip k = 1", f"flip k = {K}", "AAR k = 1", f"AAR k = {K}",
                "PGD iters, flip k = 1", f"PGD iters, flip k = {K}", "replay check max |Δθ|"]
        body = [[str(r["step"]), fmt(o["flip_k1"]), fmt(o["flip_kK"]), fmt(o["aar_k1"]), fmt(o["aar_kK"]),
                 _iters(o["pgd_iterations_flip_k1"]), _iters(o["pgd_iterations_flip_kK"]),
                 "—" if not r.get("replay_check") else f"{r['replay_check']['max_abs']:.2g}"]
                for r in rows for o in (r["one_step"],)]
    elif argument == "new_batch":
        head = ["step", "flip rate, training batch", "flip rate, fresh latents", "difference [95% MOVER]"]
        body = [[str(r["step"]), fmt(o["trained"]), fmt(o["fresh"]), _diff(o["difference"])]
                for r in rows for o in (r["new_batch"],)]
    else:
        head = ["step", "parameter attack", "real update", "pixel PGD same norm", "attack − real [95% MOVER]"]
        body = [[str(r["step"]), fmt(o["parameter_attack"]), fmt(o["real_update"]), fmt(o["pixel_pgd"]),
                 _diff(o["difference"])] for r in rows for o in (r["param_space"],)]
    return [head] + body


def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return "n/a"
    if d.get("ci_low") is None or d["ci_low"] != d["ci_low"]:
        return f"{d['value']:+.1%} (no interval)"
    return f"{d['value']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]" + (" *" if d.get("significant") else "")


def markdown(over: dict[str, Any] | None) -> list[str]:
    """summary.md lines of the section (empty without it)."""
    if not over:
        return []
    lines = ["", "## Odena's three arguments over training", "",
             f"At {len(over['rows'])} persisted snapshots (steps {', '.join(map(str, over['steps']))}); replayed "
             f"steps use the {over.get('loss')} generator loss against the frozen D of the snapshot. * marks a "
             f"significant difference. Pooled: {over['pooled']['one_step'].get('method', '')}.", ""]
    for argument in LABELS:
        lines += [f"* **{LABELS[argument]}**: {over['verdicts'][argument]}"]
    for argument in LABELS:
        rows = table(over, argument)
        if len(rows) > 1:
            lines += ["", f"### {LABELS[argument]}", "", "| " + " | ".join(rows[0]) + " |",
                      "|" + " --- |" * len(rows[0])] + ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", "The final checkpoint's arguments follow beneath."]
    return lines


def _series(over: dict[str, Any] | None, argument: str) -> str:
    """``step: difference`` per snapshot, the argument's course over one run."""
    if not over:
        return "n/a"
    rows = [r for r in over["rows"] if (r.get(argument) or {}).get("difference")]
    return ", ".join(f"{r['step']}: {r[argument]['difference']['value']:+.0%}" for r in rows) or "n/a"


def compare_tables(report: dict[str, Any]) -> dict[str, list[list[str]]]:
    """``compare``: per run each argument's pooled number, its difference against the baseline run and
    its course over the snapshots; per arm the mean over seeds and the difference against the baseline arm."""
    section = report.get("odena_over_training")
    if not section:
        return {}
    by_label = {run["label"]: run.get("odena_over_training") for run in report["runs"]}
    head = ["run", "argument", "pooled over snapshots [95%]", f"− {section['baseline']} [95% MOVER]",
            "per snapshot (step: difference)"]
    body = [[row["label"], LABELS[a], _interval(row[a]["pooled"]), _diff(row[a]["difference"]) if row[a]["difference"]
             else "—", _series(by_label.get(row["label"]), a)] for row in section["runs"] for a in LABELS]
    out = {"runs": [head] + body}
    if section.get("arms"):
        out["arms"] = [["arm", *(LABELS[a] for a in LABELS)]] + [[r["arm"], *(_interval(r[a]) for a in LABELS)]
                                                                 for r in section["arms"]]
        out["arm_differences"] = [["arm − baseline arm", *(LABELS[a] for a in LABELS)]] + [
            [f"{r['arm']} − {r['baseline']}", *(_interval(r[a]) for a in LABELS)] for r in section["arm_differences"]]
    return out


def _interval(est: dict[str, Any] | None) -> str:
    if not est or not est.get("n"):
        return "n/a"
    return _diff(est) + f" (n={est['n']})"


def compare_markdown(report: dict[str, Any]) -> list[str]:
    tables = compare_tables(report)
    if not tables:
        return []
    meaning = report["odena_over_training"]["meaning"]
    lines = ["## Odena's three arguments over training", "",
             "Pooled per run: the mean over its persisted snapshots of " + "; ".join(
                 f"{LABELS[a]}: {meaning[a]}" for a in LABELS) + " (Student-t interval over snapshots); per arm: "
             "the mean over seeds (Student-t), arms against the baseline arm by Welch's t.", ""]
    for key in ("runs", "arms", "arm_differences"):
        if key in tables:
            rows = tables[key]
            lines += ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
    return lines
