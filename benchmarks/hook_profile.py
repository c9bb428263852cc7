"""Where the hook's time goes: wraps the hook's parts with timers (benchmarks only; the wrapping
itself costs a few microseconds a call, so profiled runs are never the timed ones).

Parts, per measured step:
    snapshot        SnapshotRing.take at every generator step (D_t, copied)
    probes          generating x = G_θ(Z), x' = G_θ'(Z) and the training batch's x (Watcher._generate)
    scoring         the rest of measure_update: D_t(x) with its input gradient, D_t(x'), norms, summaries
    min-norm        the minimum-norm attack (eps_star) on its measured steps
    efficiency PGD  the L2 PGD for s_pgd
    noise control   the random directions in the box (their scoring is counted in scoring)
    persistence     D_{t+1}(x') at the next generator step
    writing         the run store: records, per-sample arrays, probes, snapshots, manifest, checkpoint
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from typing import Any, Callable

import ganrobust.hook as hook
import ganrobust.measure.update as update
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.runs.store import RunWriter
from ganrobust.snapshots import SnapshotRing


class HookProfile:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._originals: list[tuple[Any, str, Any]] = []
        self._wrap(hook.Watcher, "_on_pre", "hook total")
        self._wrap(hook.Watcher, "_on_post", "hook total")
        self._wrap(hook.Watcher, "__init__", "hook total")
        self._wrap(hook.Watcher, "close", "hook total")
        self._wrap(SnapshotRing, "take", "snapshot")
        self._wrap(hook.Watcher, "_generate", "probes")
        self._wrap(hook.Watcher, "_resolve_persists", "persistence")
        self._wrap(hook, "measure_update", "measure_update")
        self._wrap(update, "pgd", "efficiency PGD")
        self._wrap(update, "random_step_in_box", "noise control")
        self._wrap(MinimumNormAttack, "__call__", "min-norm")
        for name in ("__init__", "append", "save_probes", "save_snapshots", "write_checkpoint", "save_samples",
                     "close", "write_manifest"):
            self._wrap(RunWriter, name, "writing")

    def _wrap(self, owner: Any, name: str, part: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        self._originals.append((owner, name, vars(owner).get(name)))  # None: inherited

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.calls[part] += 1

        setattr(owner, name, timed)

    def uninstall(self) -> None:
        """Put every wrapped function back (a later profile then times afresh)."""
        for owner, name, original in reversed(self._originals):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._originals = []

    def report(self) -> dict[str, float]:
        """Seconds by part over the whole run; ``scoring`` is measure_update less its attacks."""
        s = dict(self.seconds)
        inner = s.get("efficiency PGD", 0.0) + s.get("noise control", 0.0) + s.get("min-norm", 0.0)
        s["scoring"] = s.pop("measure_update", 0.0) - inner
        s["measure_update calls"] = self.calls.get("measure_update", 0)
        s["min-norm calls"] = self.calls.get("min-norm", 0)
        return s
