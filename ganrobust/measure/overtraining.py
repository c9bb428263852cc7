"""Numbers over a watched run's measured steps: the question is "how often, over training".

Pure functions over ``reporting.training_rows`` (one dict per measured generator step, each
rate a stored Clopper–Pearson estimate ``{value, ci_low, ci_high, n}``), shared by the demo, audit and
run reports (``run_headline``) and by ``compare`` (``pooled_persistence``).
"""

from __future__ import annotations

from typing import Any

from ganrobust.correlated import pooled_share
from ganrobust.stats import clopper_pearson, mean_ci

PERSISTENCE_METHOD = ("pooled share of all flips that persist (Σ persisted / Σ flips over the measured steps), "
                      "Korn–Graubard 95% interval over steps (Clopper–Pearson at the steps' effective sample size: "
                      "flips of one update are not independent); no interval below 6 steps with flips")
HEADLINE_METHOD = ("means over measured steps with Student-t 95% intervals over steps; share of steps with at least "
                   "one accidental attack with a Clopper–Pearson interval; worst step: the largest per-step rate and its step")

# the headline numbers averaged over seeds: key -> (name, percent?)
ARM_NUMBERS = {"aar": ("mean AAR over training", True), "flip_rate": ("mean flip rate over training", True),
               "persists": ("persistence of flips (pooled)", True),
               "eps_star fake->real": ("final median eps* fake->real", False),
               "eps_star real->fake": ("final median eps* real->fake", False),
               "frechet": ("final Fréchet distance", False), "high_quality": ("final high-quality share", True)}


def _count(est: dict[str, Any] | None) -> tuple[int, int] | None:
    """(successes, n) of a stored rate: successes = round(value·n)."""
    if not est or not est.get("n") or est.get("value") is None:
        return None
    return int(round(float(est["value"]) * int(est["n"]))), int(est["n"])


def pooled_persistence(rows: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Share of all flips that D, after its next update, still calls real: Σ persisted / Σ flips,
    persisted = round(value·n) of each step's persistence record (n = that step's flips). ``seed`` is
    unused since the interval is no longer a bootstrap (kept for callers)."""
    counts = [c for c in (_count(r.get("persists")) for r in rows) if c is not None]
    est = pooled_share([k for k, _ in counts], [n for _, n in counts])
    return {**est.to_dict(), "method": PERSISTENCE_METHOD}


def _worst(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    measured = [r for r in rows if _count(r.get(key)) is not None]
    if not measured:
        return None
    top = max(measured, key=lambda r: float(r[key]["value"]))  # first step on ties
    return {"step": top["step"], **top[key]}


def run_headline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's headline over its measured steps: mean AAR and flip rate (each step's rate one
    observation), the share of steps with at least one accidental attack, and the worst step."""
    def per_step(key: str) -> list[float]:
        return [float(r[key]["value"]) for r in rows if _count(r.get(key)) is not None]

    aar_counts = [c for c in (_count(r.get("aar")) for r in rows) if c is not None]
    return {
        "steps": len(rows),
        "mean_aar": mean_ci(per_step("aar"), bounds=(0.0, 1.0)).to_dict(),
        "mean_flip_rate": mean_ci(per_step("flip_rate"), bounds=(0.0, 1.0)).to_dict(),
        "steps_with_accidental_attack": clopper_pearson(sum(k >= 1 for k, _ in aar_counts), len(aar_counts)).to_dict(),
        "worst_aar": _worst(rows, "aar"),
        "worst_flip_rate": _worst(rows, "flip_rate"),
        "persistence": pooled_persistence(rows),
        "method": HEADLINE_METHOD,
    }
