"""The sentences a report states, computed from its numbers: one per Odena argument for an
audit, one per comparison and measure for ``compare``. A report read back from disk gets its
sentences again from this version's rules (a difference is significant only with an interval,
n at least the minimum, and 0 outside it)."""

from __future__ import annotations

from typing import Any, Callable

from ganrobust.measure.overtraining import ARM_NUMBERS
from ganrobust.stats import MIN_N, MIN_SEEDS, difference, has_interval, significant


def _pct(est: dict[str, Any]) -> str:
    return f"{est['value']:.1%} [{est['ci_low']:.1%}, {est['ci_high']:.1%}]"


def _iters(n: int | None, total: int) -> str:
    return f"{n} iteration(s)" if n is not None else f"more than {total} iterations (not reached)"


def _significance(d: dict[str, Any] | None) -> str:
    if not d:
        return "no difference can be estimated (no fake-classified probe on one side)"
    verdict = "a significant difference" if d["significant"] else "no significant difference"
    if d.get("ci_low") is None or d["ci_low"] != d["ci_low"]:
        return f"{verdict} (difference {d['value']:+.1%}; no interval: {d.get('note') or 'too few probes'})"
    return f"{verdict} (difference {d['value']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}], 95% MOVER interval)"


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """One sentence per argument, computed from the numbers."""
    out = {}
    one = report["odena"]["one_step"]
    steps = one["steps"]
    total = len(one.get("pgd") or []) - 1
    first, last = steps[0], steps[-1]
    if not first["flip_rate"].get("n"):
        out["one_step"] = "no probe is classified fake: there is nothing for an update to flip"
    else:
        sentence = (f"one replayed generator step flips {_pct(first['flip_rate'])} of fake-classified probes, "
                    f"{_pct(first['aar'])} within linf <= eps (AAR); {len(steps)} steps flip {last['flip_rate']['value']:.1%} "
                    f"(AAR {last['aar']['value']:.1%})")
        if "pgd_iterations_for_same_aar" in first:
            sentence += (f". Linf PGD held to eps reaches the one-step AAR in "
                         f"{_iters(first['pgd_iterations_for_same_aar'], total)}; PGD held to each probe's own "
                         f"update size ||p||_inf reaches the one-step flip rate in "
                         f"{_iters(first.get('pgd_iterations_for_same_flip_rate'), total)}")
        out["one_step"] = sentence
    nb = report["odena"]["new_batch"]
    a, b = nb["trained_batch"]["flip_rate"], nb["fresh_latents"]["flip_rate"]
    diff = (nb.get("difference") or {}).get("flip_rate")
    if "difference" not in nb:  # a report written before differences were stored
        diff = difference(a, b)
    out["new_batch"] = (f"flip rate {a['value']:.1%} on the batch the step was optimised on vs {b['value']:.1%} on fresh "
                        f"latents: {_significance(diff)}")
    ps = report["odena"]["param_space"]
    mixed = "" if ps.get("attacked_on") else " (this report's attack ascended on the probes themselves, so argument 2 is mixed in)"
    out["param_space"] = (f"at the update's parameter norm, a parameter-space attack flips "
                          f"{ps['parameter_attack']['flip_rate']['value']:.1%}, the real update "
                          f"{ps['real_update']['flip_rate']['value']:.1%}, pixel PGD at the same pixel norm "
                          f"{ps['pixel_pgd_same_norm']['flip_rate']['value']:.1%}{mixed}")
    rob = report.get("robust_d")
    if rob and rob.get("difference"):
        out["robust_d"] = (f"the same update flips {rob['robust']['flip_rate']['value']:.1%} of the probes an adversarially "
                           f"fine-tuned D calls fake vs {rob['standard']['flip_rate']['value']:.1%} for the checkpoint's D: "
                           f"{_significance(rob['difference']['flip_rate'])}")
    return out


def _pct_or_num(pct: bool) -> Callable[[Any], str]:
    # float(): a report read back from JSON holds infinities as "inf"
    if pct:
        return lambda x: f"{float(x) if abs(float(x)) >= 5e-4 else 0.0:+.1%}"
    return lambda x: f"{float(x):+.3g}"


def _sentence(who: str, name: str, v: dict[str, Any], pct: bool, how: str, min_n: int) -> str:
    """``who: name +d [lo, hi] how — significant`` with the significance re-judged from the numbers:
    an interval, n >= min_n and 0 outside it (a report written before these rules is judged by them)."""
    f = _pct_or_num(pct)
    if not has_interval(v):
        why = v.get("note") or f"n={v.get('n')}, below {min_n}"
        return f"{who}: {name} {f(v['value'])}{how}, no interval ({why}) — not called significant"
    sig = bool(v.get("significant", True)) and significant(v, min_n=min_n)
    return (f"{who}: {name} {f(v['value'])} [{f(v['ci_low'])}, {f(v['ci_high'])}]{how} (n={v['n']}) — "
            f"{'significant' if sig else 'not significant'} at 95%")


def compare_verdicts(report: dict[str, Any]) -> list[str]:
    """One sentence per comparison and measure, computed from the numbers: first between arms over
    seeds (when the runs form arms), then run by run."""
    out = []
    for d in report.get("arm_differences", []):
        seeds = {a["name"]: a["seeds"] for a in report.get("arms", [])}
        who = f"arm {d['arm']} ({seeds.get(d['arm'])} seeds) vs {d['baseline']} ({seeds.get(d['baseline'])} seeds)"
        for key, (name, pct) in ARM_NUMBERS.items():
            if d.get(key) and d[key].get("value") is not None:
                out.append(_sentence(who, name, d[key], pct, " (over seeds, Welch)", MIN_SEEDS))
    pooled = "persistence" in (report.get("methods") or {})
    for d in report["differences"]:
        who = f"{d['run']} vs {d['baseline']}"
        for key, name, pct in (("aar_paired", "accidental-attack rate", True), ("flip_rate_paired", "flip rate", True),
                               ("persists", "persistence of flips, pooled over steps" if pooled else
                                "mean persistence of flips over steps (report written before pooling)", True),
                               ("eps_star real->fake", "median eps* real->fake at the end", False),
                               ("eps_star fake->real", "median eps* fake->real at the end", False),
                               ("frechet", "Fréchet distance at the end", False),
                               ("high_quality", "high-quality share at the end", True)):
            v = d.get(key)
            if not v or v.get("value") is None or not v.get("n", 1):
                continue
            paired = " (mean of per-step differences)" if key.endswith("_paired") else ""
            out.append(_sentence(who, name, v, pct, paired, MIN_N))
        if "modes_covered" in d:
            out.append(f"{who}: modes covered {d['modes_covered']['run']} of 8 vs {d['modes_covered']['baseline']}")
    return out
