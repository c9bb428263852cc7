"""Lining runs up: ``ganrobust compare RUN_A RUN_B [...]``.

For each run (a directory written by ``ganrobust.watch``):

* **accidental attacks over training** — the hook's per-step AAR and flip rate with their
  Clopper–Pearson intervals, and their mean over measured steps;
* **D's robustness over training** — at every persisted snapshot and at the end, the median
  minimum linf perturbation eps* that flips D (fake->real on G's samples, real->fake on
  held-out real samples) and the attack success rate at ``eps``;
* **sample quality over training** — at the same points, :mod:`ganrobust.measure.quality`: modes
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

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.config import CompareConfig, ScoreSpec
from ganrobust.conventions import BatchNormMode
from ganrobust.data import BUILTIN, Dataset, eight_gaussians, load_dataset, real_subset
from ganrobust.gan_call import DEFAULT, GanCall, gan_call_from_record
from ganrobust.distributed import Context, item_seed
from ganrobust.measure.comparison import ARM_METHOD, PERSISTENCE_METHOD_NOTE, line_up, means_over_training
from ganrobust.measure.quality import FeatureSpace, image_quality, real_floor, ring_quality, train_feature_net
from ganrobust.measure.replay import generate
from ganrobust.module_copy import copy_module
from ganrobust.module_state import preserved_rng
from ganrobust.runs import Run, read_run
from ganrobust.runs.checkpoints import LoadedGAN, load_gan
from ganrobust.runs.settings import batch_setting, g_bn_setting
from ganrobust.measure.arguments_compare import compare_arguments
from ganrobust.pipeline.compare_arguments import point_arguments
from ganrobust.runs.store import CheckpointError, IntegrityError, load_snapshot, persisted_steps
from ganrobust.scorer import Scorer, with_threshold
from ganrobust.stats import Estimate
from ganrobust.errors import InputError, param


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
        raise InputError(f"the runs were trained on different data ({', '.join(sorted(map(str, names)))}); compare runs "
                         f"on the same data, or pass {param('data')} to score them all against one dataset")
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
    return _Quality("none", real_subset(data.x, cfg.robustness_samples, seed=cfg.seed, labels=data.y)[0],
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
    G, D = copy_module(loaded.G), copy_module(loaded.D)
    for module, kind in ((G, "G_after"), (D, "D")):
        module.load_state_dict(load_snapshot(run_dir, step, kind, verify=verify))
    return G.eval(), D.eval()


def _generate(G: nn.Module, Z: torch.Tensor, batch: int, call: GanCall = DEFAULT, C: torch.Tensor | None = None,
              g_bn: BatchNormMode = BatchNormMode.BATCH) -> torch.Tensor:
    """G's samples in batches of the run's batch size, G's BatchNorm as the run recorded (batch
    statistics, as in the training loop, by default; running statistics untouched)."""
    return torch.cat([generate(G, Z[i:i + batch], g_bn, call, None if C is None else C[i:i + batch])
                      for i in range(0, len(Z), batch)])


def _robustness(scorer: Scorer, x: torch.Tensor, direction: str, cfg: CompareConfig) -> dict[str, Any]:
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction=direction, seed=cfg.seed)
    at_eps = next(r for r in curve.rows() if math.isclose(r["eps"], cfg.eps))
    return {"median_eps_star": curve.median_eps_star.to_dict(), "clean_accuracy": curve.clean_accuracy.to_dict(),
            "success_at_eps": {"value": at_eps["success_rate"], "ci_low": at_eps["ci_low"],
                               "ci_high": at_eps["ci_high"], "n": at_eps["n"]}}


def _label(paths: list[Path], labels: list[str] | None) -> list[str]:
    if labels:
        if len(labels) != len(paths):
            raise InputError(f"expected one label per run ({len(paths)}), got {len(labels)}")
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
        raise InputError(f"expected at least two runs to compare, got {len(run_dirs)}")
    if arms is not None and (len(arms) != len(run_dirs) or len(set(arms)) < 2):
        raise InputError(f"expected an arm name per run and at least two arms, got {len(set(arms))} arm(s) for "
                         f"{len(run_dirs)} runs")
    tick = progress or (lambda _msg: None)
    runs = [read_run(p) for p in run_dirs]
    names = _label([Path(p) for p in run_dirs], labels)
    with preserved_rng(torch.device(device)):
        torch.manual_seed(cfg.seed)
        dataset, note = _run_data(runs, data)
        yardstick = _yardstick(dataset, note, cfg, tick)
        results = _evaluate_runs(runs, names, yardstick, cfg, device, tick, ctx or Context())
    if results is None:  # not rank 0
        return None
    bounds = runs[0].manifest.get("data_range") or [-1.0, 1.0]
    out = {"runs": results, "quality": yardstick.describe(), "data": None if dataset is None else dataset.name,
           "bounds": [float(b) for b in bounds],
           "methods": {"persistence": PERSISTENCE_METHOD_NOTE, **({"arms": ARM_METHOD} if arms is not None else {})}}
    over = compare_arguments(results, arms)  # each run's arguments over training, per arm, against the baseline
    return {**out, **line_up(results, arms, cfg), **({"odena_over_training": over} if over else {})}


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
    rows = run.training_rows()
    by_class = next((s.raw["by_class"] for s in reversed(run.steps) if s.raw.get("by_class")), None)
    if gan_call_from_record(run.manifest.get("gan_call")).conditional:
        notes.append("real->fake robustness not measured: a conditional D scores real samples with their labels, "
                     "which the shared yardstick does not keep")
    out: dict[str, Any] = {
        "label": name, "dir": str(run.dir), "status": run.manifest.get("status"),
        "train_config": run.manifest.get("train_config"), "score": run.manifest.get("score"),
        "training": rows, "points": [], "notes": notes,
        "mean_over_training": means_over_training(rows, cfg.seed),
        **({"by_class": by_class} if by_class else {}),  # a conditional run: its last measured step, per class
    }
    if loaded is not None:  # how its G generates at every point: as the run recorded (g_bn, latent batch)
        out["generation"] = {"g_bn": g_bn_setting(loaded).to_dict(), "batch": batch_setting(loaded).to_dict()}
    return out, loaded


def _evaluate_point(run: Run, name: str, loaded: LoadedGAN, step: int, where: str, last: bool,
                    yardstick: _Quality, cfg: CompareConfig, device: str) -> tuple[dict[str, Any], np.ndarray | None]:
    """One evaluation point of a run: D's robustness both ways and sample quality at ``step``;
    with ``last``, also the samples the report shows (the run's final G)."""
    dev = torch.device(device)
    score = run.manifest.get("score") or loaded.score
    bn = cfg.bn or BatchNormMode(score.get("bn") or "eval")
    batch, g_bn = batch_setting(loaded).value, BatchNormMode(g_bn_setting(loaded).value)  # as the run recorded
    gen = torch.Generator().manual_seed(cfg.seed)
    call = gan_call_from_record(run.manifest.get("gan_call"))
    Z, C = call.sample(max(yardstick.n, cfg.robustness_samples), loaded.latent_shape, gen, dev)
    G, D = _models_at(run.dir, loaded, step, where, cfg.verify)
    G.to(dev)
    D.to(dev)
    x = _generate(G, Z, batch, call, C, g_bn)
    shown = call.export(x)  # samples as images leave the tool (StyleGAN's clamped); D scores x itself
    samples = None
    if last and yardstick.kind == "ring":
        samples = shown[:500].cpu().numpy()
    elif last and x.dim() == 4:
        samples = shown[:16].cpu().numpy()
    if not torch.isfinite(x).all():
        return {"step": step, "source": where, "error": "G produced NaN or inf samples"}, samples
    spec = ScoreSpec(kind=score.get("kind", "logit"), tau=score.get("tau"), bounds=loaded.bounds, bn=bn).for_call(call)
    # each probe (z, c) scored with its own condition
    scorer = Scorer.of(D, spec, call).on(None if C is None else C[: cfg.robustness_samples])
    # a critic's threshold moves with training: recalibrated at every point, as the hook does
    scorer = with_threshold(scorer, yardstick.real, x[: cfg.robustness_samples], tau_given=score.get("tau") is not None,
                            missing=f"{name} has a critic D (WGAN): its threshold needs real samples; pass {param('data')}")
    point: dict[str, Any] = {"step": step, "source": where, "tau": float(scorer.tau),
                             "quality": yardstick.score(shown[: yardstick.n].cpu(), cfg.seed) if yardstick.n else None,
                             "robustness": {"fake->real": _robustness(scorer, x[: cfg.robustness_samples], "fake->real", cfg)}}
    if yardstick.real is not None and not call.conditional:
        point["robustness"]["real->fake"] = _robustness(scorer, yardstick.real.to(dev), "real->fake", cfg)
    if where == "snapshot":  # Odena's three arguments at the step, as `audit RUN --snapshots all` replays them
        point["odena"] = point_arguments(run, loaded, step, cfg, device, yardstick.real)
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


def sample_arrays(report: dict[str, Any]) -> dict[str, np.ndarray]:
    """The final samples of each run, popped from the report (kept out of report.json)."""
    return {f"run{i}": r.pop("samples") for i, r in enumerate(report["runs"]) if "samples" in r}
