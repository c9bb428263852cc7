"""ganrobust: adversarial-robustness audits of GAN discriminators.

Measures how often a generator update is an *accidental attack* on the discriminator it
was taken against (Odena 2019, Open Questions about GANs, Problem 7).

Data flows one way (README, "Layout"; tests/test_architecture.py holds it)::

    models + data -> snapshots -> measurement -> records -> run store -> report
                     watching/    measure/        records.py  runs/        report/

This module is the public API: the hook (``watch``), the scorer convention and the shared
vocabulary. Other modules import only ``__version__`` from it.
"""

from ganrobust.conventions import BatchNormMode, Bounds, Direction, Norm, ScoreKind
from ganrobust.diagnostics import Diagnostic, diagnose_scorer
from ganrobust.scorer import Scorer
from ganrobust.stats import Estimate, wilson
from ganrobust.config import WatchConfig
from ganrobust.hook import Watcher, watch

__version__ = "0.1.0"

__all__ = [
    "BatchNormMode", "Bounds", "Diagnostic", "Direction", "Estimate", "Norm", "ScoreKind",
    "Scorer", "WatchConfig", "Watcher", "__version__", "diagnose_scorer", "watch", "wilson",
]
