"""Figures for reports: matplotlib on the Agg backend (no display), returned as PNG bytes.

One module of small functions (about 20 lines each) sharing one backend setup and the band and
error-bar helpers; every report page draws from it."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _band(ax: Any, x: list[float], rows: list[dict[str, Any]], label: str, color: str) -> None:
    v = np.array([np.nan if r["value"] is None else r["value"] for r in rows], dtype=float)
    lo = np.array([np.nan if r["ci_low"] is None else r["ci_low"] for r in rows], dtype=float)
    hi = np.array([np.nan if r["ci_high"] is None else r["ci_high"] for r in rows], dtype=float)
    ax.plot(x, v, "o-", color=color, label=label, ms=3)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2)


def over_training(training: list[dict[str, Any]]) -> bytes:
    """AAR, flip rate and the random-direction control per measured step, with 95% bands."""
    steps = [r["step"] for r in training]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    _band(ax, steps, [r["flip_rate"] for r in training], "flip rate", "tab:blue")
    _band(ax, steps, [r["aar"] for r in training], "accidental-attack rate", "tab:red")
    _band(ax, steps, [r["noise_flip_rate"] for r in training], "random-direction control", "tab:gray")
    ax.set_xlabel("generator step")
    ax.set_ylabel("share of fake-classified probes")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Generator updates that flip D, over training")
    return _png(fig)


def norm_histogram(samples: dict[str, np.ndarray], width: float) -> bytes:
    """‖p‖∞ of the update against eps* of the same samples (fractions of the range)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    p = samples["linf"] / width
    ax.hist(p[np.isfinite(p)], bins=30, alpha=0.6, label="‖p‖∞ of the update", color="tab:blue")
    e = samples["eps_star"] / width
    e = e[np.isfinite(e)]
    if e.size:
        ax.hist(e, bins=30, alpha=0.6, label="eps* (minimum adversarial linf)", color="tab:orange")
    ax.set_xlabel("fraction of the data range")
    ax.set_ylabel("probes")
    ax.legend(fontsize=8)
    ax.set_title("Update size against the smallest attack")
    return _png(fig)


def one_step(odena: dict[str, Any]) -> bytes:
    """Left: flip rate and AAR after k replayed steps. Right: PGD over iterations under the same
    budgets — held to eps (the AAR's budget) and to each probe's own one-step ||p||_inf (the flip
    rate's) — with the one-step rates as dashed lines to read the crossing."""
    steps, pgd = odena["one_step"]["steps"], odena["one_step"]["pgd"]
    own = {o["k"]: o["pgd"] for o in odena["one_step"].get("pgd_own_budget", [])}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    _band(axes[0], [s["k"] for s in steps], [s["flip_rate"] for s in steps], "flip rate", "tab:blue")
    _band(axes[0], [s["k"] for s in steps], [s["aar"] for s in steps], "AAR (linf <= eps)", "tab:red")
    axes[0].set_xlabel("replayed generator steps k (D frozen)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Argument 1: one step")
    if pgd:
        _band(axes[1], [r["iterations"] for r in pgd], [r["flip_rate"] for r in pgd], "PGD, linf <= eps", "tab:red")
        if steps[0]["aar"].get("value") is not None:
            axes[1].axhline(steps[0]["aar"]["value"], color="tab:red", ls="--", lw=1, label="one-step AAR")
    if 1 in own and own[1]:
        _band(axes[1], [r["iterations"] for r in own[1]], [r["flip_rate"] for r in own[1]],
              "PGD, linf <= own ||p||inf (k=1)", "tab:blue")
        if steps[0]["flip_rate"].get("value") is not None:
            axes[1].axhline(steps[0]["flip_rate"]["value"], color="tab:blue", ls="--", lw=1, label="one-step flip rate")
    axes[1].set_xlabel("PGD iterations")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7)
    axes[1].set_title("PGD under the same budgets")
    return _png(fig)


def bars(groups: dict[str, dict[str, Any]], title: str) -> bytes:
    """Flip rate and AAR with intervals for a few named settings."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(groups)
    x = np.arange(len(names))
    for offset, key, color in ((-0.2, "flip_rate", "tab:blue"), (0.2, "aar", "tab:red")):
        v = np.array([groups[n][key]["value"] or 0.0 for n in names])
        lo = np.array([groups[n][key]["ci_low"] or 0.0 for n in names])
        hi = np.array([groups[n][key]["ci_high"] or 0.0 for n in names])
        ax.bar(x + offset, v, 0.4, yerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)], color=color, alpha=0.8, capsize=3,
               label="flip rate" if key == "flip_rate" else "AAR")
    ax.set_xticks(x, [n.replace("_", " ") for n in names], fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _png(fig)


def robustness(rows: list[dict[str, Any]]) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, norm in zip(axes, ("linf", "l2")):
        for direction, color in (("fake->real", "tab:red"), ("real->fake", "tab:blue")):
            sel = [r for r in rows if r["norm"] == norm and r["direction"] == direction]
            if sel:
                _band(ax, [r["eps"] for r in sel], [{"value": r["success_rate"], "ci_low": r["ci_low"],
                                                     "ci_high": r["ci_high"]} for r in sel], direction, color)
        ax.set_xscale("log")
        ax.set_xlabel(f"{norm} budget (fraction of the range)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
        ax.set_title(f"D's robustness, {norm}")
    axes[0].set_ylabel("attack success rate")
    return _png(fig)


def image_grid(images: dict[str, np.ndarray], bounds: tuple[float, float]) -> bytes | None:
    """Rows: x, x', the update p amplified to the range, the PGD perturbation δ amplified."""
    x = images.get("image_x")
    if x is None or x.ndim != 4 or x.shape[1] not in (1, 3):
        return None
    lo, hi = bounds
    rows = [("x = G(z)", x), ("x' after the update", images["image_x_next"])]
    p = images["image_x_next"] - x
    rows.append(("p, amplified", p / (np.abs(p).reshape(len(p), -1).max(1)[:, None, None, None] + 1e-12) * (hi - lo) / 2
                 + (lo + hi) / 2))
    if "image_x_pgd" in images:
        d = images["image_x_pgd"] - x
        rows.append(("PGD δ, amplified", d / (np.abs(d).reshape(len(d), -1).max(1)[:, None, None, None] + 1e-12)
                     * (hi - lo) / 2 + (lo + hi) / 2))
    n = x.shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.1))
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            img = np.clip((imgs[c] - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)
            ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=6)
    return _png(fig)


def robustness_over_training(snapshots: list[dict[str, Any]]) -> bytes:
    """Median eps* (linf, fake->real) and the curve at each grid budget, per audited snapshot."""
    steps = [s["step"] for s in snapshots]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    _band(axes[0], steps, [s["median_eps_star"] for s in snapshots], "median eps* (linf)", "tab:orange")
    axes[0].set_xlabel("generator step")
    axes[0].set_ylabel("fraction of the range")
    axes[0].legend(fontsize=8)
    axes[0].set_title("D's robustness over training")
    grid = sorted({r["eps"] for s in snapshots for r in s["robustness"]})
    cmap = plt.get_cmap("viridis")
    for i, eps in enumerate(grid):
        rows = [next(r for r in s["robustness"] if r["eps"] == eps) for s in snapshots]
        axes[1].plot(steps, [r["success_rate"] for r in rows], "o-", ms=3, color=cmap(i / max(len(grid) - 1, 1)),
                     label=f"eps={eps * 255:.3g}/255")
    axes[1].set_xlabel("generator step")
    axes[1].set_ylabel("fake->real success rate")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7)
    return _png(fig)


RUN_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")


def _float(v: Any) -> float:
    """A number from a report: None (NaN in JSON) -> nan, "inf"/"-inf" (how JSON holds them) -> ±inf."""
    return np.nan if v is None else float(v)


def _errorbars(ax: Any, x: list[float], ests: list[dict[str, Any] | None], label: str, color: str, fmt: str = "o-") -> None:
    def get(e: dict[str, Any] | None, key: str) -> float:
        return np.nan if e is None else _float(e.get(key))

    v = np.array([get(e, "value") for e in ests])
    lo = np.array([get(e, "ci_low") for e in ests])
    hi = np.array([get(e, "ci_high") for e in ests])
    hi = np.where(np.isfinite(hi), hi, v)
    # no interval (below the minimum n, or no variation): the point without a bar, never a zero-width one drawn as data
    lo = np.where(np.isnan(lo), v, lo)
    with np.errstate(invalid="ignore"):
        yerr = [np.nan_to_num(np.clip(v - lo, 0, None)), np.nan_to_num(np.clip(hi - v, 0, None))]
    ax.errorbar(x, v, yerr=yerr, fmt=fmt, ms=3, capsize=2, color=color, label=label)


def compare_training(runs: list[dict[str, Any]]) -> bytes:
    """AAR and flip rate per measured step, one colour per run, with 95% bands."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True, layout="constrained")
    for run, color in zip(runs, RUN_COLORS):
        steps = [r["step"] for r in run["training"]]
        _band(axes[0], steps, [r["aar"] for r in run["training"]], run["label"], color)
        _band(axes[1], steps, [r["flip_rate"] for r in run["training"]], run["label"], color)
    for ax, title in zip(axes, ("accidental-attack rate (flip with linf ≤ eps)", "flip rate (any size)")):
        ax.set_xlabel("generator step")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("share of fake-classified probes")
    return _png(fig)


def compare_robustness(runs: list[dict[str, Any]]) -> bytes:
    """Median minimum linf eps* of D over training, per direction and run (error bars: 95%)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    for ax, direction in zip(axes, ("fake->real", "real->fake")):
        for run, color in zip(runs, RUN_COLORS):
            pts = [p for p in run["points"] if direction in p.get("robustness", {})]
            if pts:
                _errorbars(ax, [p["step"] for p in pts], [p["robustness"][direction]["median_eps_star"] for p in pts],
                           run["label"], color)
            if direction == "fake->real":
                hook = [r for r in run["training"] if r["eps_star"]["n"] and np.isfinite(_float(r["eps_star"]["value"]))]
                if hook:
                    ax.plot([r["step"] for r in hook], [_float(r["eps_star"]["value"]) for r in hook], ".", color=color,
                            alpha=0.35, label=f"{run['label']} (hook, 16 probes)")
        ax.set_xlabel("generator step")
        ax.set_ylabel("median eps* (linf, fraction of the range)")
        ax.set_title(f"D's robustness, {direction}", fontsize=10)
        ax.legend(fontsize=7)
    return _png(fig)


def compare_quality(runs: list[dict[str, Any]], quality: dict[str, Any]) -> bytes | None:
    """Fréchet distance (with the real-vs-real floor) or the ring's high-quality share and modes covered."""
    measure = quality.get("measure")
    if measure not in ("frechet", "ring"):
        return None
    fig, axes = plt.subplots(1, 2 if measure == "ring" else 1, figsize=(10 if measure == "ring" else 6.5, 3.4),
                             squeeze=False, layout="constrained")
    for run, color in zip(runs, RUN_COLORS):
        pts = [p for p in run["points"] if p.get("quality")]
        steps = [p["step"] for p in pts]
        if measure == "frechet":
            _errorbars(axes[0, 0], steps, [p["quality"]["frechet"] for p in pts], run["label"], color)
        else:
            _errorbars(axes[0, 0], steps, [p["quality"]["high_quality"] for p in pts], run["label"], color)
            axes[0, 1].plot(steps, [p["quality"]["modes_covered"] for p in pts], "o-", ms=3, color=color, label=run["label"])
    if measure == "frechet":
        floor = quality.get("floor") or {}
        if floor.get("value") is not None:
            axes[0, 0].axhspan(floor["ci_low"], floor["ci_high"], color="gray", alpha=0.2)
            axes[0, 0].axhline(floor["value"], color="gray", ls="--", label="real vs real (floor)")
        axes[0, 0].set_yscale("log")
        axes[0, 0].set_ylabel(f"Fréchet distance (n={quality['n']})")
        axes[0, 0].set_title("Sample quality: Fréchet distance in a classifier's features (lower is better)", fontsize=9)
    else:
        axes[0, 0].set_ylim(-0.02, 1.02)
        axes[0, 0].set_ylabel("share within 3σ of a mode")
        axes[0, 0].set_title("High-quality samples", fontsize=10)
        axes[0, 1].set_ylim(-0.2, 8.2)
        axes[0, 1].set_ylabel("modes covered (of 8)")
        axes[0, 1].set_title("Modes covered", fontsize=10)
        axes[0, 1].legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("generator step")
    axes[0, 0].legend(fontsize=8)
    return _png(fig)


def compare_samples(samples: dict[str, np.ndarray], labels: list[str], bounds: tuple[float, float]) -> bytes | None:
    """Each run's final samples, same latents: one image row per run, or one ring scatter per run."""
    arrays = [samples.get(f"run{i}") for i in range(len(labels))]
    if not any(a is not None for a in arrays):
        return None
    lo, hi = bounds
    first = next(a for a in arrays if a is not None)
    if first.ndim == 2 and first.shape[1] == 2:
        fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.2), squeeze=False)
        from ganrobust.data import ring_modes

        modes = ring_modes().numpy()
        for ax, label, a in zip(axes[0], labels, arrays):
            ax.scatter(modes[:, 0], modes[:, 1], marker="x", color="black", s=40)
            if a is not None:
                ax.scatter(a[:, 0], a[:, 1], s=2, alpha=0.5)
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
            ax.set_title(label, fontsize=9)
        return _png(fig)
    if first.ndim != 4 or first.shape[1] not in (1, 3):
        return None
    n = first.shape[0]
    fig, axes = plt.subplots(len(labels), n, figsize=(n * 0.8, len(labels) * 0.9), squeeze=False)
    for r, (label, a) in enumerate(zip(labels, arrays)):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if a is not None and c < len(a):
                img = np.clip((a[c] - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)
                ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    return _png(fig)
