"""The hook's sharding alone: which probe rows a rank measures (no process group needed to ask)."""

from __future__ import annotations

from torch import nn

from ganrobust.conventions import BatchNormMode
from ganrobust.distributed import Context
from ganrobust.scorer import Scorer
from ganrobust.watching.sharding import Sharding


def _scorer(bn: BatchNormMode) -> Scorer:
    return Scorer(nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)), bounds=(-1, 1), bn=bn)


def test_eval_mode_rows_go_to_rank_i_mod_world_and_batch_statistics_stay_whole_on_rank_0() -> None:
    G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    rank1, rank0 = Sharding(G, D, Context(rank=1, world=3)), Sharding(G, D, Context(rank=0, world=3))
    assert rank1.rows(8, _scorer(BatchNormMode.EVAL)).tolist() == [1, 4, 7]
    assert rank1.rows(8, _scorer(BatchNormMode.BATCH)).tolist() == []
    assert rank0.rows(8, _scorer(BatchNormMode.BATCH)).tolist() == list(range(8))
    assert rank1.record(_scorer(BatchNormMode.EVAL))["probes"] == "sharded (row i on rank i mod world)"
    assert rank1.record(_scorer(BatchNormMode.BATCH))["probes"] == "whole batch on rank 0"


def test_one_process_measures_every_row_and_records_no_distribution() -> None:
    one = Sharding(nn.Linear(4, 2), nn.Linear(2, 1), Context())
    assert one.rows(5, _scorer(BatchNormMode.EVAL)).tolist() == [0, 1, 2, 3, 4]
    assert one.record(_scorer(BatchNormMode.EVAL)) is None and not one.fsdp
