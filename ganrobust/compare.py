"""Lining runs up: ``ganrobust compare RUN_A RUN_B [...]``.

For each run (a directory written by ``ganrobust.watch``):

* **accidental attacks over training** — the hook's per-step AAR and flip rate with their
  Wilson intervals, and their mean over measured steps;
* **D's robustness over training** — at every persisted snapshot and at the end, the median
  minimum linf perturbation eps* that flips D (fake->real on G's samples, real->fake on
  held-out real samples) and the attack success rate at ``eps``;
* **sample quality over training** — at the same points, :mod:`ganrobust.quality`: modes
  covered and high-quality share on the 8-Gaussians ring, a Fréchet distance in a small
  classifier's feature space on labelled images.

Every run is scored with the same latents, real samples, feature space and attacks, so the
numbers differ only through the runs. Differences against the first run (the baseline) come
with 95% intervals: paired over the measured steps both runs share for the per-step rates,
MOVER (Newcombe's method) for end-of-run numbers. Nothing is called significant without an
interval, and no interval is given below ``stats.MIN_N`` steps (see :mod:`ganrobust.stats`).

**Arms (several seeds).** Runs may be grouped into arms (``--arm standard=RUN,RUN,...``): each
run is evaluated as above, and per arm every headline number (mean AAR and flip rate over
training, pooled persistence, final median eps* both directions, final Fréchet distance or
high-quality share) is averaged over its runs with a Student-t 95% interval over seeds; arms
differ by a Welch t interval over seeds. Within an arm-wise comparison, the per-run
differences pair the i-th run of an arm with the i-th run of the baseline (first) arm.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.audit import generate
from ganrobust.checkpoints import CheckpointError, IntegrityError, LoadedGAN, load_gan, verify_run_file
from ganrobust.config import EPS_GRID
from ganrobust.conventions import BatchNormMode, ScoreKind
from ganrobust.distributed import Context, item_seed
from ganrobust.data import BUILTIN, Dataset, eight_gaussians, load_dataset
from ganrobust.module_state import preserved_rng
from ganrobust.quality import FeatureSpace, image_quality, real_floor, ring_quality, train_feature_net
from ganrobust.reporting import training_rows
from ganrobust.runs import Run, read_run, snapshot_file
from ganrobust.scorer import Scorer
from ganrobust.snapshots import load_state, persisted_steps
from ganrobust.overtraining import ARM_NUMBERS, pooled_persistence
from ganrobust.stats import (MIN_N, MIN_SEEDS, Estimate, difference, has_interval, mean_ci, seed_mean,
                             significant, welch_difference)

COMPARE_SCHEMA = "ganrobust.compare/1"
DIRECTIONS = ("fake->real", "real->fake")


@dataclass(frozen=True)
class CompareConfig:
    """What ``compare`` evaluates at every persisted snapshot and at the end of each run."""

    quality_samples: int = 2000      # generated samples per quality score (images: capped by the reference set)
    robustness_samples: int = 64     # samples attacked per direction per point
    eps: float = 8 / 255             # budget of the reported success rate (fraction of the range)
    eps_grid: tuple[float, ...] = EPS_GRID
    classifier_steps: int = 300      # training steps of the feature-space classifier
    bn: BatchNormMode | None = None  # how D's BatchNorm scores; None: as each run recorded
    verify: bool = True              # check run files against the SHA-256 their manifest recorded
    seed: int = 0

    def __post_init__(self) -> None:
        if self.bn is not None:
            object.__setattr__(self, "bn", BatchNormMode(self.bn))
        if self.quality_samples < 2 or self.robustness_samples < 1 or self.classifier_steps < 1:
            raise ValueError(f"expected quality_samples >= 2, robustness_samples >= 1, classifier_steps >= 1; got "
                             f"{self.quality_samples}, {self.robustness_samples}, {self.classifier_steps}")
        if not 0 < self.eps <= 1:
            raise ValueError(f"expected 0 < eps <= 1 (a fraction of the data range), got {self.eps}")
        if self.eps not in self.eps_grid:
            object.__setattr__(self, "eps_grid", tuple(sorted({*self.eps_grid, self.eps})))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bn"] = None if self.bn is None else self.bn.value
        return out


@dataclass
class _Quality:
    """The shared yardstick: real samples, and the ring or the feature space."""

    kind: str                        # "ring" | "frechet" | "none"
    real: torch.Tensor | None        # real samples for real->fake robustness
    space: FeatureSpace | None = None
    n: int = 0
    floor: Estimate | None = None
    note: str | None = None

    def score(self, x: torch.Tensor, seed: int) -> dict[str, Any] | None:
        if self.kind == "ring":
            return ring_quality(x)
        if self.kind == "frechet":
            assert self.space is not None
            return image_quality(self.space, x, seed=seed)
        return None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"measure": self.kind, "n": self.n, "note": self.note}
        if self.space is not None:
            out.update(classifier_accuracy=self.space.accuracy.to_dict(), classes=self.space.classes,
                       n_reference=len(self.space.reference),
                       floor=None if self.floor is None else self.floor.to_dict(),
                       classifier="FeatureNet: 3 stride-2 3x3 convolutions + a 64-d linear layer, trained on the "
                                  "dataset's labels; features = that 64-d layer")
        return out


def _run_data(runs: list[Run], data: Dataset | None) -> tuple[Dataset | None, str | None]:
    """The dataset the runs were trained on (they must agree), or why there is none."""
    if data is not None:
        return data, None
    names = {(r.manifest.get("data") or {}).get("name") for r in runs}
    configs = [r.manifest.get("train_config") or {} for r in runs]
    if None in names:
        return None, ("a run does not record its data (runs from your own loop): pass --data to score sample quality "
                      "and real->fake robustness")
    if len(names) > 1:
        raise ValueError(f"the runs were trained on different data ({', '.join(sorted(map(str, names)))}); compare runs "
                         f"on the same data, or pass --data to score them all against one dataset")
    name = names.pop()
    if name not in BUILTIN and name not in ("eight_gaussians", "ring"):
        return None, f"the runs were trained on {name!r}, not a built-in dataset: pass --data with that file"
    c = configs[0]
    return load_dataset(name, n=int(c.get("n_data", 10000)), seed=int(c.get("seed", 0)),
                        size=int(c.get("image_size", 32))), None


def _yardstick(data: Dataset | None, note: str | None, cfg: CompareConfig, tick: Callable[[str], None]) -> _Quality:
    if data is None:
        return _Quality("none", None, note=note)
    if data.name == "8gaussians":
        # real->fake robustness on a fresh draw of the ring, not the training samples
        real = eight_gaussians(cfg.robustness_samples, seed=cfg.seed + 1).x
        return _Quality("ring", real, n=cfg.quality_samples)
    if data.x.dim() == 4 and data.y is not None:
        tick("training the feature-space classifier")
        space = train_feature_net(data, steps=cfg.classifier_steps, seed=cfg.seed)
        n = min(cfg.quality_samples, space.max_samples)
        capped = None if n == cfg.quality_samples else (f"quality scored on {n} samples: the held-out reference set "
                                                        f"of {data.name} has no more")
        return _Quality("frechet", space.reference[: cfg.robustness_samples], space, n, real_floor(space, n, seed=cfg.seed),
                        note=capped)
    return _Quality("none", data.x[: cfg.robustness_samples],
                    note=f"{data.name} is neither the ring nor labelled images: no sample-quality measure applies")


def _points(run: Run, loaded: LoadedGAN | None) -> list[tuple[int, str]]:
    """Evaluation points: persisted snapshots, then the end of the run (its checkpoint)."""
    points = [(step, "snapshot") for step in persisted_steps(run.dir)]
    final = run.manifest.get("generator_steps")
    if loaded is not None and loaded.source == "ganrobust checkpoint" and final is not None:
        if not points or points[-1][0] != int(final):
            points.append((int(final), "checkpoint"))
    return points


def _models_at(run_dir: Path, loaded: LoadedGAN, step: int, where: str, verify: bool = True
               ) -> tuple[nn.Module, nn.Module]:
    """G and D at a persisted step (each file checked against the SHA-256 the run recorded)."""
    if where == "checkpoint":
        return loaded.G, loaded.D
    G, D = copy.deepcopy(loaded.G), copy.deepcopy(loaded.D)
    for module, kind in ((G, "G_after"), (D, "D")):
        relpath = snapshot_file(step, kind)
        verify_run_file(run_dir, relpath, verify)
        module.load_state_dict(load_state(run_dir / relpath))
    return G.eval(), D.eval()


def _generate(G: nn.Module, Z: torch.Tensor, batch: int) -> torch.Tensor:
    """G's samples in batches of the training batch size (its BatchNorm uses batch statistics,
    as in the training loop; running statistics untouched)."""
    return torch.cat([generate(G, Z[i:i + batch], BatchNormMode.BATCH) for i in range(0, len(Z), batch)])


def _robustness(scorer: Scorer, x: torch.Tensor, direction: str, cfg: CompareConfig) -> dict[str, Any]:
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction=direction, seed=cfg.seed)
    at_eps = next(r for r in curve.rows() if math.isclose(r["eps"], cfg.eps))
    return {"median_eps_star": curve.median_eps_star.to_dict(), "clean_accuracy": curve.clean_accuracy.to_dict(),
            "success_at_eps": {"value": at_eps["success_rate"], "ci_low": at_eps["ci_low"],
                               "ci_high": at_eps["ci_high"], "n": at_eps["n"]}}


def _mean_over_steps(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of a per-step rate over the measured steps (each step one observation), Student-t interval."""
    values = [r[key]["value"] for r in rows if r[key] and r[key]["n"] and r[key]["value"] is not None]
    return mean_ci(values, bounds=(0.0, 1.0)).to_dict()


def _label(paths: list[Path], labels: list[str] | None) -> list[str]:
    if labels:
        if len(labels) != len(paths):
            raise ValueError(f"expected one label per run ({len(paths)}), got {len(labels)}")
        return list(labels)
    names = [p.resolve().name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
    return names


def compare_runs(run_dirs: list[Path], *, labels: list[str] | None = None, arms: list[str] | None = None,
                 data: Dataset | None = None,
                 cfg: CompareConfig = CompareConfig(), device: str = "cpu",
                 progress: Callable[[str], None] | None = None, ctx: Context | None = None) -> dict[str, Any] | None:
    """Evaluate and line up runs; returns the comparison's sections (schema ganrobust.compare/1).

    ``arms``: an arm name per run (runs with the same name are seeds of one arm; the first name is
    the baseline arm); adds the sections ``arms`` and ``arm_differences``.
    Raises ValueError (CheckpointError) with the fix for unreadable runs or runs on different data.
    The global RNG is left as it was; the same inputs and seed give the same numbers.

    ``ctx`` (under ``torchrun``): the evaluation points are sharded over ranks and the comparison
    is returned on rank 0 only (None on the others), equal to the single-process one.
    """
    if len(run_dirs) < 2:
        raise ValueError(f"expected at least two runs to compare, got {len(run_dirs)}")
    if arms is not None and (len(arms) != len(run_dirs) or len(set(arms)) < 2):
        raise ValueError(f"expected an arm name per run and at least two arms, got {len(set(arms))} arm(s) for "
                         f"{len(run_dirs)} runs")
    tick = progress or (lambda _msg: None)
    runs = [read_run(p) for p in run_dirs]
    names = _label([Path(p) for p in run_dirs], labels)
    with preserved_rng(torch.device(device)):
        torch.manual_seed(cfg.seed)
        dataset, note = _run_data(runs, data)
        yardstick = _yardstick(dataset, note, cfg, tick)
        evaluated = _evaluate_runs(runs, names, yardstick, cfg, device, tick, ctx or Context())
    if evaluated is None:  # not rank 0
        return None
    results = evaluated
    bounds = runs[0].manifest.get("data_range") or [-1.0, 1.0]
    out = {"runs": results, "quality": yardstick.describe(), "data": None if dataset is None else dataset.name,
           "bounds": [float(b) for b in bounds], "methods": {"persistence": PERSISTENCE_METHOD_NOTE}}
    if arms is None:
        out["differences"] = [_differences(results[0], other, cfg) for other in results[1:]]
        return out
    groups: dict[str, list[dict[str, Any]]] = {}
    for arm, result in zip(arms, results):
        result["arm"] = arm
        groups.setdefault(arm, []).append(result)
    names_in_order = list(groups)
    base = groups[names_in_order[0]]
    # seed-matched pairs: the i-th run of each arm against the i-th run of the baseline arm
    out["differences"] = [_differences(b, o, cfg) for name in names_in_order[1:] for b, o in zip(base, groups[name])]
    out["arms"] = [_arm(name, groups[name]) for name in names_in_order]
    out["arm_differences"] = [_arm_difference(names_in_order[0], base, name, groups[name])
                              for name in names_in_order[1:]]
    out["methods"]["arms"] = ARM_METHOD
    return out


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
        result["mean_over_training"] = {
            **{key: _mean_over_steps(rows, key) for key in ("aar", "flip_rate", "noise_flip_rate")},
            "persists": pooled_persistence(rows, cfg.seed)}
    runs = report["runs"]
    report["differences"] = [_differences(runs[0], other, cfg) for other in runs[1:]]
    report["methods"] = {"persistence": PERSISTENCE_METHOD_NOTE,
                         "restated": "means over training, persistence and differences recomputed from the stored "
                                     "per-step rows by a later ganrobust (written before pooled persistence and the "
                                     f"minimum n of {MIN_N})"}
    return True


PERSISTENCE_METHOD_NOTE = ("persistence: pooled share of all flips that persist (Σ persisted / Σ flips over the "
                           "measured steps), 95% percentile bootstrap over steps; no interval below "
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


def _evaluate_run(run: Run, name: str, cfg: CompareConfig) -> tuple[dict[str, Any], LoadedGAN | None]:
    """A run's own section (the hook's measurements) and its rebuilt G and D (None when they cannot be)."""
    notes = list(run.problems)
    try:
        loaded: LoadedGAN | None = load_gan(run.dir, verify=cfg.verify)
        notes += loaded.notes
    except IntegrityError:
        raise  # corrupted bytes are an error, never a note
    except CheckpointError as err:
        loaded = None
        notes.append(f"D and G cannot be rebuilt ({err}); only the hook's measurements are compared")
    rows = training_rows(run)
    out: dict[str, Any] = {
        "label": name, "dir": str(run.dir), "status": run.manifest.get("status"),
        "train_config": run.manifest.get("train_config"), "score": run.manifest.get("score"),
        "training": rows, "points": [], "notes": notes,
        "mean_over_training": {**{key: _mean_over_steps(rows, key) for key in ("aar", "flip_rate", "noise_flip_rate")},
                               "persists": pooled_persistence(rows, cfg.seed)},
    }
    return out, loaded


def _evaluate_point(run: Run, name: str, loaded: LoadedGAN, step: int, where: str, last: bool,
                    yardstick: _Quality, cfg: CompareConfig, device: str) -> tuple[dict[str, Any], np.ndarray | None]:
    """One evaluation point of a run: D's robustness both ways and sample quality at ``step``;
    with ``last``, also the samples the report shows (the run's final G)."""
    dev = torch.device(device)
    score = run.manifest.get("score") or loaded.score
    bn = cfg.bn or BatchNormMode(score.get("bn") or "eval")
    batch = int((run.manifest.get("train_config") or {}).get("batch", 64))
    gen = torch.Generator().manual_seed(cfg.seed)
    Z = torch.randn((max(yardstick.n, cfg.robustness_samples),) + loaded.latent_shape, generator=gen).to(dev)
    G, D = _models_at(run.dir, loaded, step, where, cfg.verify)
    G.to(dev)
    D.to(dev)
    x = _generate(G, Z, batch)
    samples = None
    if last and yardstick.kind == "ring":
        samples = x[:500].cpu().numpy()
    elif last and x.dim() == 4:
        samples = x[:16].cpu().numpy()
    if not torch.isfinite(x).all():
        return {"step": step, "source": where, "error": "G produced NaN or inf samples"}, samples
    scorer = Scorer(D, kind=score.get("kind", "logit"), tau=score.get("tau"), bounds=loaded.bounds, bn=bn)
    if scorer.kind is ScoreKind.CRITIC and score.get("tau") is None:
        # a critic's threshold moves with training: recalibrated at every point, as the hook does
        if yardstick.real is None:
            raise ValueError(f"{name} has a critic D (WGAN): its threshold needs real samples; pass --data")
        scorer = scorer.calibrate(yardstick.real.to(dev), x[: cfg.robustness_samples])
    point: dict[str, Any] = {"step": step, "source": where, "tau": float(scorer.tau),
                             "quality": yardstick.score(x[: yardstick.n].cpu(), cfg.seed) if yardstick.n else None,
                             "robustness": {"fake->real": _robustness(scorer, x[: cfg.robustness_samples], "fake->real", cfg)}}
    if yardstick.real is not None:
        point["robustness"]["real->fake"] = _robustness(scorer, yardstick.real.to(dev), "real->fake", cfg)
    return point, samples


def _evaluate_runs(runs: list[Run], names: list[str], yardstick: _Quality, cfg: CompareConfig, device: str,
                   tick: Callable[[str], None], ctx: Context) -> list[dict[str, Any]] | None:
    """Every run's section; the evaluation points of all runs form one list of items sharded over
    ranks (item ``i`` on rank ``i mod world``, its global RNG seeded by ``item_seed(seed, i)``),
    gathered on rank 0 in order. None on the other ranks."""
    heads = [_evaluate_run(run, name, cfg) for run, name in zip(runs, names)]
    items: list[tuple[int, int, str, bool]] = []
    for r, (run, (_, loaded)) in enumerate(zip(runs, heads)):
        points = _points(run, loaded) if loaded is not None else []
        items += [(r, step, where, k == len(points) - 1) for k, (step, where) in enumerate(points)]

    def work(index: int, item: tuple[int, int, str, bool]) -> tuple[dict[str, Any], np.ndarray | None]:
        r, step, where, last = item
        tick(f"{names[r]}: step {step}")
        loaded = heads[r][1]
        assert loaded is not None
        torch.manual_seed(item_seed(cfg.seed, index))
        return _evaluate_point(runs[r], names[r], loaded, step, where, last, yardstick, cfg, device)

    evaluated = ctx.map(items, work)
    if evaluated is None:
        return None
    for (r, _, _, last), (point, samples) in zip(items, evaluated):
        out = heads[r][0]
        out["points"].append(point)
        if last and samples is not None:
            out["samples"] = samples
    return [out for out, _ in heads]


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
    for key in ("aar", "flip_rate"):
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


def verdicts(report: dict[str, Any]) -> list[str]:
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


def sample_arrays(report: dict[str, Any]) -> dict[str, np.ndarray]:
    """The final samples of each run, popped from the report (kept out of report.json)."""
    return {f"run{i}": r.pop("samples") for i, r in enumerate(report["runs"]) if "samples" in r}
