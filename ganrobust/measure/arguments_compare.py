"""Odena's three arguments over training, lined up across runs for ``compare``: per run the pooled
per-snapshot difference of each argument (:mod:`ganrobust.measure.arguments_over_training`) and its
difference against the baseline run; per arm the mean over seeds and the Welch difference against
the baseline arm. Pure: the runs' evaluated points in, a dict out."""

from __future__ import annotations

from typing import Any

from ganrobust.measure.arguments_over_training import ARGUMENTS, arguments_over_training
from ganrobust.stats import difference, seed_mean, welch_difference

#: what each argument's pooled number is
MEANING = {"one_step": "flip rate after K replayed steps − after one step",
           "new_batch": "flip rate on the training batch − on fresh latents",
           "param_space": "flip rate of a parameter-space attack − of the real update"}


def _pooled_value(run: dict[str, Any], argument: str) -> float | None:
    over = run.get("odena_over_training")
    est = None if not over else over["pooled"].get(argument)
    return None if not est or not est.get("n") or est.get("value") is None else float(est["value"])


def compare_arguments(results: list[dict[str, Any]], arms: list[str] | None) -> dict[str, Any] | None:
    """The comparison's ``odena_over_training`` section; each run's own summary is set on the run
    (``run["odena_over_training"]``). None when no run has a snapshot with the arguments."""
    for run in results:
        points = [{"step": p["step"], "odena": p["odena"]} for p in run.get("points", []) if p.get("odena")]
        over = arguments_over_training(points) if points else None
        if over is not None:
            run["odena_over_training"] = over
    if not any("odena_over_training" in run for run in results):
        return None
    base = results[0]
    runs = []
    for run in results:
        row: dict[str, Any] = {"label": run["label"]}
        for argument in ARGUMENTS:
            own = (run.get("odena_over_training") or {}).get("pooled", {}).get(argument)
            ref = (base.get("odena_over_training") or {}).get("pooled", {}).get(argument)
            row[argument] = {"pooled": own, "difference": None if run is base else difference(own, ref)}
        runs.append(row)
    out: dict[str, Any] = {"meaning": MEANING, "baseline": base["label"], "runs": runs}
    if arms is not None:
        names = list(dict.fromkeys(arms))
        values = {argument: {name: [v for run, arm in zip(results, arms) if arm == name
                                    for v in [_pooled_value(run, argument)] if v is not None] for name in names}
                  for argument in ARGUMENTS}
        out["arms"] = [{"arm": name, **{argument: seed_mean(values[argument][name], bounds=(-1.0, 1.0)).to_dict()
                                        for argument in ARGUMENTS}} for name in names]
        out["arm_differences"] = [
            {"arm": name, "baseline": names[0],
             **{argument: welch_difference(values[argument][name], values[argument][names[0]]).to_dict()
                for argument in ARGUMENTS}} for name in names[1:]]
    return out
