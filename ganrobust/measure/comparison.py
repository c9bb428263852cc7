"""Lining measured runs up, as numbers: means over training, pooled persistence, differences
against the baseline run (paired over shared steps, MOVER for end-of-run numbers) and, for
arms of several seeds, means over seeds and Welch differences between arms. Pure functions
over the per-run results that :mod:`ganrobust.pipeline.compare` evaluates; no file is read.

Nothing is called significant without an interval, and no interval is given below
``stats.MIN_N`` steps (see :mod:`ganrobust.stats`).
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from ganrobust import metrics
from ganrobust.config import CompareConfig
from ganrobust.measure.overtraining import ARM_NUMBERS, pooled_persistence
from ganrobust.stats import MIN_N, MIN_SEEDS, difference, mean_ci, seed_mean, significant, welch_difference

DIRECTIONS = ("fake->real", "real->fake")


def mean_over_steps(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of a per-step rate over the measured steps (each step one observation), Student-t interval."""
    values = [r[key]["value"] for r in rows if r[key] and r[key]["n"] and r[key]["value"] is not None]
    return mean_ci(values, bounds=(0.0, 1.0)).to_dict()


def means_over_training(rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """A run's means over its measured steps (registry view ``over_training``) and its pooled persistence."""
    return {**{key: mean_over_steps(rows, key) for key in metrics.keys("over_training")},
            "persists": pooled_persistence(rows, seed)}


def restate(report: dict[str, Any]) -> bool:
    """Recompute, in place, a comparison written before pooled persistence and the minimum-n rules
    from what it stored: each run's per-step rows (rates with their n, persistence with its
    flips) and its evaluated points. Each run's means over training and the pairwise
    differences are derived again; returns whether anything was restated (False for a report
    this version wrote). The per-step rows themselves are data and are left as they were."""
    if "persistence" in (report.get("methods") or {}):
        return False
    cfg = CompareConfig(**{k: v for k, v in (report.get("config") or {}).items()
                           if k in {f.name for f in fields(CompareConfig)} and k != "eps_grid"})
    for result in report["runs"]:
        rows = result.get("training") or []
        result["mean_over_training"] = means_over_training(rows, cfg.seed)
    runs = report["runs"]
    report["differences"] = [_differences(runs[0], other, cfg) for other in runs[1:]]
    report["methods"] = {"persistence": PERSISTENCE_METHOD_NOTE,
                         "restated": "means over training, persistence and differences recomputed from the stored "
                                     "per-step rows by a later ganrobust (written before pooled persistence and the "
                                     f"minimum n of {MIN_N})"}
    return True


#: how arms (several seeds each) are summarised and differenced; stated in every report with arms
ARM_METHOD = (f"per arm: mean over its runs (seeds) of each run's number, Student-t 95% interval over seeds (from "
              f"{MIN_SEEDS} seeds); between arms: difference of those means with a Welch t 95% interval over seeds")

PERSISTENCE_METHOD_NOTE = ("persistence: pooled share of all flips that persist (Σ persisted / Σ flips over the "
                           "measured steps), Korn–Graubard 95% interval over steps (Clopper–Pearson at the effective sample size); no interval below "
                           f"{MIN_N} steps with flips")
ARM_METHOD = (f"per arm: mean over its runs (seeds) of each run's number, Student-t 95% interval over seeds (from "
              f"{MIN_SEEDS} seeds); between arms: difference of those means with a Welch t 95% interval over seeds")



def _run_numbers(result: dict[str, Any]) -> dict[str, float | None]:
    """One run's headline numbers (None where it has none; infinite eps* counts as none)."""
    def value(d: dict[str, Any] | None) -> float | None:
        if not d or not d.get("n") or d.get("value") is None:
            return None
        v = float(d["value"])
        return v if math.isfinite(v) else None

    mot = result["mean_over_training"]
    out: dict[str, float | None] = {"aar": value(mot["aar"]), "flip_rate": value(mot["flip_rate"]),
                                    "persists": value(mot.get("persists"))}
    final = _final(result)
    for direction in DIRECTIONS:
        rob = (final or {}).get("robustness", {}).get(direction)
        out[f"eps_star {direction}"] = value(rob["median_eps_star"]) if rob else None
    q = (final or {}).get("quality") or {}
    out["frechet"] = value(q.get("frechet")) if q.get("measure") == "frechet" else None
    out["high_quality"] = value(q.get("high_quality")) if q.get("measure") == "ring" else None
    return out


def _arm(name: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    per_run = [_run_numbers(r) for r in results]
    numbers = {}
    for key in ARM_NUMBERS:
        values = [p[key] for p in per_run if p[key] is not None]
        if values:
            # every headline number is >= 0 (rates, norms, distances); rates are also <= 1
            bounds = (0.0, 1.0) if ARM_NUMBERS[key][1] else (0.0, math.inf)
            numbers[key] = {**seed_mean(values, bounds=bounds).to_dict(), "values": values}
    return {"name": name, "runs": [r["label"] for r in results], "seeds": len(results), "numbers": numbers}


def _arm_difference(base_name: str, base: list[dict[str, Any]], name: str, other: list[dict[str, Any]]) -> dict[str, Any]:
    """``other − base`` over seeds for every headline number both arms have (Welch t)."""
    pb, po = [_run_numbers(r) for r in base], [_run_numbers(r) for r in other]
    out: dict[str, Any] = {"arm": name, "baseline": base_name}
    for key in ARM_NUMBERS:
        vb = [p[key] for p in pb if p[key] is not None]
        vo = [p[key] for p in po if p[key] is not None]
        if vb and vo:
            d = welch_difference(vo, vb)
            out[key] = {**d.to_dict(), "significant": significant(d, min_n=MIN_SEEDS)}
    return out


def _final(result: dict[str, Any]) -> dict[str, Any] | None:
    ok = [p for p in result["points"] if "error" not in p]
    return ok[-1] if ok else None


def _difference(base: dict[str, Any] | None, other: dict[str, Any] | None) -> dict[str, Any] | None:
    """``other − base`` with its MOVER interval, or None where either is missing or infinite."""
    return difference(other, base)


def _differences(base: dict[str, Any], other: dict[str, Any], cfg: CompareConfig) -> dict[str, Any]:
    """``other − base``: per-step rates paired over shared steps, end-of-run numbers by MOVER."""
    out: dict[str, Any] = {"run": other["label"], "baseline": base["label"]}
    by_step = {r["step"]: r for r in base["training"]}
    for key in metrics.keys("paired"):
        diffs = [r[key]["value"] - by_step[r["step"]][key]["value"] for r in other["training"]
                 if r["step"] in by_step and r[key]["n"] and by_step[r["step"]][key]["n"]]
        d = mean_ci(diffs)  # no interval below MIN_N shared steps or for a constant difference
        out[f"{key}_paired"] = {**d.to_dict(), "significant": significant(d)}
    out["persists"] = _difference(base["mean_over_training"]["persists"], other["mean_over_training"]["persists"])
    fb, fo = _final(base), _final(other)
    if fb is None or fo is None:
        return out
    out["step"] = {"baseline": fb["step"], "run": fo["step"]}
    for direction in DIRECTIONS:
        if direction in fb["robustness"] and direction in fo["robustness"]:
            out[f"eps_star {direction}"] = _difference(fb["robustness"][direction]["median_eps_star"],
                                                       fo["robustness"][direction]["median_eps_star"])
            out[f"success {direction}"] = _difference(fb["robustness"][direction]["success_at_eps"],
                                                      fo["robustness"][direction]["success_at_eps"])
    qb, qo = fb.get("quality"), fo.get("quality")
    if qb and qo and qb["measure"] == "frechet":
        out["frechet"] = _difference(qb["frechet"], qo["frechet"])
    elif qb and qo and qb["measure"] == "ring":
        out["high_quality"] = _difference(qb["high_quality"], qo["high_quality"])
        out["modes_covered"] = {"baseline": qb["modes_covered"], "run": qo["modes_covered"]}
    return out


def line_up(results: list[dict[str, Any]], arms: list[str] | None, cfg: CompareConfig) -> dict[str, Any]:
    """The differences of every run against the baseline (the first run), or with ``arms`` (an arm
    name per run; the first name is the baseline arm) the seed-matched per-run differences, each
    arm's means over seeds and the Welch differences between arms."""
    if arms is None:
        return {"differences": [_differences(results[0], other, cfg) for other in results[1:]]}
    groups: dict[str, list[dict[str, Any]]] = {}
    for arm, result in zip(arms, results):
        result["arm"] = arm
        groups.setdefault(arm, []).append(result)
    names_in_order = list(groups)
    base = groups[names_in_order[0]]
    # seed-matched pairs: the i-th run of each arm against the i-th run of the baseline arm
    return {"differences": [_differences(b, o, cfg) for name in names_in_order[1:] for b, o in zip(base, groups[name])],
            "arms": [_arm(name, groups[name]) for name in names_in_order],
            "arm_differences": [_arm_difference(names_in_order[0], base, name, groups[name])
                                for name in names_in_order[1:]]}
