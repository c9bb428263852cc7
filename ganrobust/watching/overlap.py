"""Where the hook's measurements run: on the training thread, or under ``overlap`` on the
measurement thread (:mod:`ganrobust.background`), in step order while training goes on.

What reads the live models happens on the training thread before a step is handed over
(:meth:`StepConductor.hand_over`); under ``overlap='auto'`` the first measured step is measured on
the training thread and watched for global-RNG draws, and a D that draws keeps every later step
there too. The manifest records the decision and why (``overlap``).
"""

from __future__ import annotations

import warnings

import torch

from ganrobust.background import MeasurementThread, overlap_decision
from ganrobust.module_state import rng_draws_seen
from ganrobust.watching.conductor import StepConductor
from ganrobust.watching.steps import CapturedStep, PendingStep


class Scheduler:
    """Runs a step's measurement and its persistence check here, or submits them to the thread."""

    def __init__(self, setting: bool | str, *, sharded: bool, device: torch.device) -> None:
        use, self.why = overlap_decision(setting, sharded=sharded, device=device)
        self._worker = MeasurementThread() if use else None
        self._checked = setting != "auto"

    @property
    def record(self) -> dict[str, object]:
        """The manifest's ``overlap``: whether the thread is used, and why."""
        return {"used": self._worker is not None, "why": self.why}

    def measure(self, steps: StepConductor, current: CapturedStep | None, step: int) -> None:
        """Step ``step``'s measurement (``current`` None: this rank brings its failure to the gather)."""
        if self._worker is not None and current is not None and self._checked:
            self._submit(steps, current)
        elif self._worker is not None and current is not None:
            self._measure_checking_rng(steps, current)
        else:
            steps.measure(current, step)

    def persists(self, steps: StepConductor, pending: PendingStep, snapshot: list[torch.Tensor] | None,
                 d_steps: int) -> None:
        """D_{t+1}(x') for the pending step: on the thread after step t's measurement (which sets the
        flips), on a copy of the snapshot; here otherwise."""
        if self._worker is None:
            steps.resolve_persists(pending, snapshot, d_steps)
            return
        copy = None if snapshot is None else [t.clone() for t in snapshot]

        def job() -> None:
            if not pending.measured:  # step t's measurement failed (recorded): nothing to resolve
                return
            with steps.guard.step("persistence"):
                steps.resolve_persists(pending, copy, d_steps)

        self._worker.submit(job)

    def close(self) -> None:
        """Wait for every submitted measurement (each writes its own record) and stop the thread."""
        if self._worker is not None:
            self._worker.close()

    def _submit(self, steps: StepConductor, current: CapturedStep) -> None:
        assert self._worker is not None
        steps.hand_over(current, self._worker.wait)

        def job() -> None:
            with steps.guard.step("measurement"):
                steps.measure(current, current.step)

        self._worker.submit(job)

    def _measure_checking_rng(self, steps: StepConductor, current: CapturedStep) -> None:
        """overlap='auto', first measured step: measured here, as the synchronous hook measures it, and
        watched for draws from the global RNG (a D that draws while it is scored). On the thread such
        draws would move the loop's RNG: then every later step is measured here too."""
        with rng_draws_seen() as drew:
            try:
                steps.measure(current, current.step)
            finally:
                self._checked = True
        if drew[0]:
            assert self._worker is not None
            self._worker.close()
            self._worker = None
            self.why = "auto: D drew from the global RNG while it was scored; measured on the training thread"
            warnings.warn(f"ganrobust.watch: {self.why}", RuntimeWarning, stacklevel=6)
        if steps.sink is not None:
            steps.sink.write_manifest(overlap=self.record)
