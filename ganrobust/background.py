"""The measurement thread of ``watch(..., overlap=True)``: the hook's measurements run in step
order on one background thread while the training loop goes on (issue 22).

Everything that reads the live models happens on the training thread before it is handed over
(the probes through G after the step, copies of D_t, θ and θ'), so training cannot race the
measurement, and the thread runs the same code on the same tensors with the same seeds as the
synchronous hook: the records are identical. It draws nothing from the global torch RNG (every
draw of a measurement comes from its own seeded generator, and D scores in eval mode) and does
not fork it either (``module_state.measurement_thread``): restoring the RNG from another thread
would rewind the training thread's draws.

``overlap='auto'`` (the default) runs the thread where it can only pay: a single-process CPU
loop whose torch threads leave a core idle (:func:`overlap_decision`). The hook then measures its
first step on the training thread and stays there if that measurement drew from the global RNG
(a D that draws random numbers while it is scored: in the thread, the draws would move the loop's
RNG); the manifest records the decision and why (``overlap``).

At most ``depth`` measurements wait; a loop that outruns the thread waits at its next measured
step, so memory stays bounded. ``close`` (or ``Watcher.close``) waits for every one.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from typing import Callable

import torch

from ganrobust.module_state import measurement_thread

_STOP = object()


class MeasurementThread:
    """One daemon thread that runs submitted jobs in order; a job reports its own failures."""

    def __init__(self, depth: int = 2) -> None:
        self._jobs: "queue.Queue[object]" = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="ganrobust-measure", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the measurement thread has stopped")
        self._jobs.put(job)  # blocks while `depth` jobs wait

    def wait(self) -> None:
        """Return once every submitted job has run."""
        self._jobs.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        measurement_thread()  # no RNG forks here: they would rewind the training thread's RNG
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP:
                    return
                job()  # type: ignore[operator]
            except Exception as err:  # a job records its own failures; this is a failure outside them
                warnings.warn(f"ganrobust.watch: the measurement thread's job failed ({err})", RuntimeWarning)
            finally:
                self._jobs.task_done()


def overlap_decision(setting: bool | str, *, sharded: bool, device: torch.device,
                     threads: int | None = None, cores: int | None = None) -> tuple[bool, str]:
    """Whether the hook measures on the background thread, and why (recorded in the manifest).

    ``auto`` chooses it only for a single-process CPU loop whose torch threads leave a core idle,
    where ``benchmarks/watch.py --whole-process`` measured it near free; on a busy CPU the thread
    competes with training, and on a GPU it has not been measured.
    """
    if setting is False:
        return False, "overlap=False"
    if sharded:
        return False, "sharded: every rank measures on the training thread, in step order"
    if setting is True:
        return True, "overlap=True"
    if device.type != "cpu":
        return False, f"auto: the loop runs on {device.type}, where the thread is not measured yet"
    threads = torch.get_num_threads() if threads is None else threads
    cores = (os.cpu_count() or 1) if cores is None else cores
    if threads >= cores:
        return False, f"auto: the loop's {threads} torch threads use all {cores} cores"
    return True, f"auto: the loop's {threads} torch threads leave {cores - threads} of {cores} cores idle"
