"""Odena's three arguments over training: per persisted snapshot (the sweep's ``odena`` sections,
:func:`ganrobust.measure.arguments.snapshot_arguments`), pooled over snapshots, and one verdict
per argument computed from those numbers. Pure: lists of dicts in, a dict out.

Per snapshot (``rows``):
  one_step     flip rate and AAR after k = 1 and k = K replayed steps, with the PGD iterations
               that reach each (held to each probe's own ‖p_k‖∞ for the flip rate, to eps for the AAR)
  new_batch    flip rate on the training batch − on fresh latents, with its MOVER interval
  param_space  flip rate of the parameter-space attack, the real update and pixel PGD at the same norm
Pooled: the mean over snapshots of each per-snapshot difference, with a Student-t 95% interval
over snapshots (each snapshot one observation; no interval below 6 snapshots).
"""

from __future__ import annotations

from typing import Any

from ganrobust.stats import difference, mean_ci

ARGUMENTS = ("one_step", "new_batch", "param_space")
POOLED_METHOD = ("mean over snapshots of the per-snapshot difference, Student-t 95% interval over snapshots "
                 "(each snapshot one observation; none below 6 snapshots)")


def _value(est: dict[str, Any] | None) -> float | None:
    return None if not est or not est.get("n") or est.get("value") is None else float(est["value"])


def _row(snapshot: dict[str, Any]) -> dict[str, Any]:
    odena = snapshot.get("odena") or {}
    row: dict[str, Any] = {"step": snapshot["step"], "not_replayed": odena.get("not_replayed") or {},
                           "replay_check": odena.get("replay_check")}
    one = odena.get("one_step")
    if one:
        first, last = one["steps"][0], one["steps"][-1]
        row["one_step"] = {"K": last["k"], "flip_k1": first["flip_rate"], "flip_kK": last["flip_rate"],
                           "aar_k1": first["aar"], "aar_kK": last["aar"],
                           "pgd_iterations_flip_k1": first.get("pgd_iterations_for_same_flip_rate"),
                           "pgd_iterations_flip_kK": last.get("pgd_iterations_for_same_flip_rate"),
                           "pgd_iterations_aar_k1": first.get("pgd_iterations_for_same_aar"),
                           "pgd_iterations_aar_kK": last.get("pgd_iterations_for_same_aar"),
                           # K = 1: nothing was replayed beyond the recorded update (no optimizer state)
                           "difference": difference(last["flip_rate"], first["flip_rate"]) if last["k"] > 1 else None}
    nb = odena.get("new_batch")
    if nb:
        row["new_batch"] = {"trained": nb["trained_batch"]["flip_rate"], "fresh": nb["fresh_latents"]["flip_rate"],
                            "difference": (nb.get("difference") or {}).get("flip_rate")}
    ps = odena.get("param_space")
    if ps:
        row["param_space"] = {"parameter_attack": ps["parameter_attack"]["flip_rate"],
                              "real_update": ps["real_update"]["flip_rate"],
                              "pixel_pgd": ps["pixel_pgd_same_norm"]["flip_rate"],
                              "difference": difference(ps["parameter_attack"]["flip_rate"],
                                                       ps["real_update"]["flip_rate"])}
    return row


def _pooled(rows: list[dict[str, Any]], argument: str) -> dict[str, Any]:
    diffs = [d["value"] for d in (r[argument].get("difference") for r in rows if argument in r)
             if d is not None and d.get("value") is not None]
    return {**mean_ci(diffs, bounds=(-1.0, 1.0)).to_dict(), "method": POOLED_METHOD}


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _interval(est: dict[str, Any]) -> str:
    if est.get("ci_low") is None or est["ci_low"] != est["ci_low"]:
        return f"{est['value']:+.1%} (no interval: {est.get('note') or 'too few snapshots'})" if est.get("n") else "n/a"
    return f"{est['value']:+.1%} [{est['ci_low']:+.1%}, {est['ci_high']:+.1%}]"


def _mean(rows: list[dict[str, Any]], argument: str, key: str) -> float | None:
    vals = [v for v in (_value(r[argument][key]) for r in rows if argument in r) if v is not None]
    return sum(vals) / len(vals) if vals else None


def verdicts_over_training(summary: dict[str, Any]) -> dict[str, str]:
    """One sentence per argument over training, from the per-snapshot rows and the pooled numbers."""
    rows, pooled, out = summary["rows"], summary["pooled"], {}
    for argument in ARGUMENTS:
        have = [r for r in rows if argument in r and (r[argument].get("difference") is not None)]
        skipped = [r["step"] for r in rows if argument in r["not_replayed"]]
        tail = f" ({len(skipped)} snapshot(s) could not replay it: {rows_reason(rows, argument)})" if skipped else ""
        if not have:
            out[argument] = f"no snapshot measured it{tail}"
            continue
        more = sum(r[argument]["difference"]["value"] > 0 for r in have)
        sig = sum(bool(r[argument]["difference"].get("significant")) and r[argument]["difference"]["value"] > 0
                  for r in have)
        less = sum(bool(r[argument]["difference"].get("significant")) and r[argument]["difference"]["value"] < 0
                   for r in have)
        n = len(have)
        if argument == "one_step":
            K = have[0]["one_step"]["K"]
            head = (f"at {more} of {n} snapshots k = {K} replayed steps flip more fake-classified probes than one step "
                    f"({sig} significantly, {less} significantly fewer); mean flip rate over snapshots "
                    f"{_pct(_mean(have, argument, 'flip_k1'))} after one step, {_pct(_mean(have, argument, 'flip_kK'))} "
                    f"after {K}")
            what = f"k = {K} − k = 1"
        elif argument == "new_batch":
            head = (f"at {more} of {n} snapshots the update flips more on the batch it was optimised on than on fresh "
                    f"latents ({sig} significantly, {less} significantly fewer); mean flip rate "
                    f"{_pct(_mean(have, argument, 'trained'))} on the training batch vs "
                    f"{_pct(_mean(have, argument, 'fresh'))} on fresh latents")
            what = "training batch − fresh latents"
        else:
            at_least = sum(r[argument]["difference"]["value"] >= 0 for r in have)
            head = (f"at {at_least} of {n} snapshots a parameter-space attack of the update's size flips at least as "
                    f"many probes as the real update ({sig} significantly more, {less} significantly fewer); mean "
                    f"flip rate {_pct(_mean(have, argument, 'parameter_attack'))} (attack) vs "
                    f"{_pct(_mean(have, argument, 'real_update'))} (real update) vs "
                    f"{_pct(_mean(have, argument, 'pixel_pgd'))} (pixel PGD at the same norm)")
            what = "attack − real update"
        out[argument] = f"{head}; pooled {what}: {_interval(pooled[argument])} over {n} snapshots{tail}"
    return out


def rows_reason(rows: list[dict[str, Any]], argument: str) -> str:
    reasons = sorted({r["not_replayed"][argument] for r in rows if argument in r["not_replayed"]})
    return "; ".join(reasons)


def arguments_over_training(snapshots: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report's ``odena_over_training`` section from the sweep's snapshot results (None when no
    snapshot carries the arguments: a sweep written before they were swept)."""
    swept = [s for s in snapshots if "odena" in s]
    if not swept:
        return None
    rows = [_row(s) for s in sorted(swept, key=lambda s: s["step"])]
    summary = {"steps": [r["step"] for r in rows], "rows": rows,
               "pooled": {argument: _pooled(rows, argument) for argument in ARGUMENTS},
               "loss": next((s["odena"].get("loss") for s in swept), None)}
    summary["verdicts"] = verdicts_over_training(summary)
    return summary
