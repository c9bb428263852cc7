"""How the hook fails: never into the user's loop. Every part of a measurement runs with the global
RNG forked and grad disabled, and an exception becomes a recorded error and a warning; after
``MAX_ERRORS`` of them the hook stops measuring. The step's own batch fails on its own: its error
goes into the step's record (``train_error``) and the probes are measured all the same.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from typing import Callable, Iterator

import torch

from ganrobust.distributed import Context, RankFailed
from ganrobust.module_state import preserved_rng
from ganrobust.records import ErrorRecord

MAX_ERRORS = 3


class Guard:
    """Counts the hook's errors and records them through ``record`` (rank 0's sink, else None);
    ``step`` tells the generator step a failure happened at."""

    def __init__(self, ctx: Context, device: Callable[[], torch.device], step: Callable[[], int],
                 record: Callable[[ErrorRecord], None] | None) -> None:
        self.ctx, self._device = ctx, device  # G's device, asked at each guarded part
        self._step, self._record = step, record
        self.errors = 0
        self._train_warned = False

    @property
    def stopped(self) -> bool:
        """True once ``MAX_ERRORS`` errors were recorded: the hook measures no more."""
        return self.errors >= MAX_ERRORS

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Fork the RNG, disable grad, and turn a failure into a recorded error, not a crash."""
        try:
            with preserved_rng(self._device()), torch.no_grad():
                yield
        except Exception as err:  # the user's training must go on
            # sharded: only a failure every rank saw at the same gather (RankFailed) counts, so the
            # count, and with it which hooks run collectives, stays the same on every rank; a failure
            # of this rank alone is carried into the next gather by the step's missing state
            if self.ctx.sharded and not isinstance(err, RankFailed):
                warnings.warn(f"ganrobust.watch: {what} failed on rank {self.ctx.rank} at generator step "
                              f"{self._step()} ({err})", RuntimeWarning, stacklevel=3)
                return
            self.errors += 1
            if self._record is not None:
                self._record(ErrorRecord(step=self._step(), where=what, error=f"{type(err).__name__}: {err}",
                                         traceback=traceback.format_exc()))
            warnings.warn(f"ganrobust.watch: {what} failed at generator step {self._step()} ({err}); "
                          f"recorded in steps.jsonl" + ("; measurement stopped" if self.stopped else ""),
                          RuntimeWarning, stacklevel=3)

    @contextlib.contextmanager
    def train(self) -> Iterator[list[str]]:
        """Like :meth:`step` for the measurement of the step's own batch, whose failure (an adapter
        that cannot map the loop's arguments back to ``(z, c)``) is appended to the yielded list,
        warned once, and stops nothing."""
        failed: list[str] = []
        try:
            with preserved_rng(self._device()), torch.no_grad():
                yield failed
        except Exception as err:  # the user's training and the probe measurement go on
            failed.append(f"{type(err).__name__}: {err}")
            if not self._train_warned:
                self._train_warned = True
                warnings.warn(f"ganrobust.watch: the step's own batch cannot be measured at generator step "
                              f"{self._step()} ({failed[0]}); the probes are, and steps.jsonl records why "
                              f"(train_error)", RuntimeWarning, stacklevel=3)
