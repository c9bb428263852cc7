"""Attacks on discriminator scorers: the native engine and the torchattacks/foolbox backends.

Every attack is called the same way::

    result = attack(scorer, x, eps=8/255, direction="fake->real", seed=0)

with ``eps`` a fraction of the data range. Backends are imported lazily, so ``import
ganrobust.attacks`` never imports torchattacks or foolbox.

In the flow ``models + data -> snapshots -> measurement -> records -> run store -> report`` the
attacks serve measurement: they take a scorer and tensors and return an ``AttackResult``; they
import nothing from measurement, the run store or the reports.
"""

from ganrobust.attacks.base import Attack, AttackResult
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.attacks.projected_gradient_descent import FastGradientAttack, ProjectedGradientDescentAttack
from ganrobust.attacks.random_noise import RandomNoiseAttack
from ganrobust.attacks.robustness_curve import RobustnessCurve, robustness_curve

PGD = ProjectedGradientDescentAttack
FGSM = FastGradientAttack
MinNorm = MinimumNormAttack


def __getattr__(name: str) -> object:
    if name == "TorchattacksAttack":
        from ganrobust.attacks.torchattacks_backend import TorchattacksAttack
        return TorchattacksAttack
    if name == "FoolboxAttack":
        from ganrobust.attacks.foolbox_backend import FoolboxAttack
        return FoolboxAttack
    raise AttributeError(f"module 'ganrobust.attacks' has no attribute {name!r}")


__all__ = [
    "FGSM", "PGD", "Attack", "AttackResult", "FastGradientAttack", "FoolboxAttack", "MinNorm",
    "MinimumNormAttack", "ProjectedGradientDescentAttack", "RandomNoiseAttack",
    "RobustnessCurve", "TorchattacksAttack", "robustness_curve",
]
