"""The hook's measurement of one generator step, pure: a scorer over the snapshot D_t and the
probes before and after the step in, typed per-rank rows and the step's record out. No hooks, no
run files, no collectives (:mod:`ganrobust.watching.sharding` gathers the rows in between).

    x = G_θ(Z), x' = G_θ'(Z)  ->  measure_update(D_t, x[rows], x'[rows])  ->  RankRows
    [RankRows of every rank]  ->  merge in probe order, summarise          ->  MeasuredStep

Every random draw is keyed by the step (``seed + step``) and the probe's row, so the merged record
does not depend on the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.config import HOOK_MIN_NORM_BISECTIONS, WatchConfig
from ganrobust.distributed import merge_rows
from ganrobust.gan_call import GanCall
from ganrobust.measure.update import by_class, eps_star_diagnostics, measure_update, persistence
from ganrobust.metrics import summarize
from ganrobust.records import PersistsRecord, StepRecord
from ganrobust.scorer import Scorer
from ganrobust.watching.steps import RankRows


@dataclass
class MeasuredStep:
    """A step's record (``samples`` and ``snapshots`` still empty: the sink fills them in when it
    writes ``arrays``, the per-sample arrays by kind, ``probe`` then ``train``)."""

    record: StepRecord
    arrays: dict[str, dict[str, np.ndarray]]


def min_norm_attack(config: WatchConfig) -> MinimumNormAttack | None:
    """The hook's minimum-norm search for ``eps_star`` (None when ``min_norm_every=0`` turns it off)."""
    if not config.min_norm_every:
        return None
    return MinimumNormAttack(norm=config.min_norm_norm, bisection_steps=HOOK_MIN_NORM_BISECTIONS,
                             precision=config.precision)


def probe_rows(scorer: Scorer, call: GanCall, config: WatchConfig, *, step: int, x: torch.Tensor,
               x_next: torch.Tensor, rows: torch.Tensor, C: torch.Tensor | None,
               min_norm: MinimumNormAttack | None, sharded: bool) -> dict[str, np.ndarray]:
    """The per-sample arrays of probe ``rows``: ``x[rows] -> x_next[rows]`` scored by D_t, each row
    with its own condition, the whole batch's x given (G's batch statistics made it)."""
    index = rows.to(x_next.device)
    scorer = scorer.through(call).on(None if C is None else C.index_select(0, index))  # row i: its own condition
    return measure_update(
        scorer, x[index], x_next[index], eps=config.eps, eps_l2=config.eps_l2,
        efficiency_steps=config.efficiency_steps, noise_draws=config.noise_draws,
        min_norm=min_norm, min_norm_probes=config.min_norm_probes,
        seed=config.seed + step, precision=config.precision,
        index=index if sharded else None, n_total=config.n_probes).samples


def train_rows(scorer: Scorer, call: GanCall, config: WatchConfig, *, seed: int, x: torch.Tensor,
               x_next: torch.Tensor, c: torch.Tensor | None) -> dict[str, np.ndarray]:
    """The per-sample arrays of the step's own batch (no efficiency search: its PGD is the probes')."""
    return measure_update(scorer.through(call).on(c), x, x_next,
                          eps=config.eps, eps_l2=config.eps_l2, efficiency_steps=0,
                          noise_draws=config.noise_draws, seed=seed).samples


def step_record(parts: list[RankRows], call: GanCall, *, step: int, n_probes: int, width: float,
                d_steps: int, tau: float | None, phase: str, bn: str, C: torch.Tensor | None) -> MeasuredStep:
    """Every rank's rows merged back into probe order and summarised with intervals, rates by class
    for a conditional GAN, the lost minimum-norm searches said with their count, and the step's own
    batch (every rank's share) summarised beside the probes."""
    probe_samples = merge_rows([(p.rows, p.probe) for p in parts], n_probes)
    record = StepRecord(step=step, d_steps=d_steps, tau=tau, probe=summarize(probe_samples, width=width), phase=phase)
    arrays = {"probe": probe_samples}
    labels = call.labels(C)
    if labels is not None:  # every metric is per (z, c) probe: rates by class too
        probe_samples["label"] = labels.cpu().numpy()
    record.extra["bn"] = bn  # how D's BatchNorm scored this step (observed under 'auto')
    if labels is not None:
        record.extra["by_class"] = by_class(probe_samples, call.classes)
    if "eps_star" in probe_samples and (lost := eps_star_diagnostics(probe_samples)):  # said, with the count
        record.extra["diagnostics"] = [d.to_dict() for d in lost]
    trains = [p.train for p in parts if p.train is not None]
    train_errors = [p.train_error for p in parts if p.train_error]
    if train_errors:  # why the step's own batch has no summary (the probes have theirs)
        record.extra["train_error"] = train_errors[0]
    if trains:
        arrays["train"] = {k: np.concatenate([t[k] for t in trains]) for k in trains[0]}
        record.train = summarize(arrays["train"], width=width)
    return MeasuredStep(record, arrays)


def later_scores(scorer: Scorer, call: GanCall, *, x_next: torch.Tensor, rows: torch.Tensor,
                 C: torch.Tensor | None) -> np.ndarray:
    """D_{t+1}(x') on this rank's probe rows (``scorer`` over D_{t+1}, with its own threshold)."""
    index = rows.to(x_next.device)
    scorer = scorer.through(call).on(None if C is None else C.index_select(0, index))  # row i: its own condition
    return scorer.score(x_next[index]).cpu().numpy() if len(index) else np.zeros(0, dtype=np.float32)


def persists_record(parts: list[tuple[np.ndarray, np.ndarray, float | None]], *, step: int,
                    d_steps: int) -> PersistsRecord:
    """Whether step ``step``'s flips still read real to D after its next ``d_steps`` updates; ``parts``
    is every rank's ``(D_{t+1} scores, flips, tau)`` in rank order."""
    s_later = np.concatenate([p[0] for p in parts])
    flip = np.concatenate([p[1] for p in parts])
    tau = parts[0][2]  # the same on every rank: calibrated on the whole probe batch
    return PersistsRecord(step=step, d_steps=d_steps, tau=tau, persists=persistence(s_later, flip, tau))
