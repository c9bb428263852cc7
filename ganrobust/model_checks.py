"""What a scorer learns about its D once per model: whether a sample's score depends on its batch,
which batch sizes D accepts, and whether the channels-last speed trick gives D's own scores.

* **Batch coupling.** BatchNorm in batch mode and StyleGAN's minibatch standard deviation layer
  make a sample's score depend on the other samples of its batch. :func:`detect_coupling` scores
  a batch and its first half once and compares; a coupled D is then scored and attacked in whole
  batches with masks (``Scorer.whole_batch``), as the batch-statistics path does.
* **Batch sizes.** StyleGAN's layer groups the batch by 4 (``x.view(4, -1, ...)``) and fails for
  other sizes. When a batch fails, :func:`find_group` finds the smallest group ``g`` such that
  batches of ``g, 2g, 3g, 5g`` samples score; batches are then padded to a multiple of ``g`` with
  copies of their own first rows (detached: context, not attacked), and the padding's scores dropped.
* **Channels-last.** A conv D stored and fed in NHWC runs faster on CPU, but a D that calls
  ``.view`` on a conv feature map (BigGAN-PyTorch, PyTorch-GAN's dcgan) fails in that layout, and
  another may compute something else. :func:`channels_last_agrees` runs both layouts once on the
  model and keeps channels-last only where it runs and gives the same scores and input gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganrobust.conventions import BatchNormMode, Direction

if TYPE_CHECKING:
    from ganrobust.scorer import Scorer

ScoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]

#: a sub-batch score further than this (relative to the largest |score|, at least 1) from the
#: sample's score in the whole batch means the D is batch-coupled; float noise of another batch
#: size is ~1e-7 relative
COUPLING_TOLERANCE = 1e-4
#: multiples of a candidate group that must all score (1..3 alone would admit StyleGAN's
#: ``min(group, N)`` for small batches)
GROUP_MULTIPLES = (1, 2, 3, 5)
MAX_GROUP = 32
#: channels-last is kept when its scores are within this of the standard layout's (relative to
#: the largest |score|, at least 1) and its input gradients within 100x this (relative to the largest)
LAYOUT_TOLERANCE = 1e-4
LAYOUT_ROWS = 64


@dataclass
class Coupling:
    """Whether D's score of a sample depends on its batch, as measured on one batch."""

    coupled: bool
    layer: str | None          # the layer(s) known to couple the batch, when one is known
    change: float              # max |score in the first half − score in the whole batch|
    tested: bool = True        # False: known from the settings (bn='batch'), not measured
    n: int = 0                 # the batch it was measured on

    def to_dict(self, group: int | None = None) -> dict[str, Any]:
        if not self.coupled:
            how = "not coupled: a sample scores the same in a batch and in its first half"
        elif self.layer:
            how = f"coupled by {self.layer}: scored and attacked in whole batches with masks"
        else:
            how = ("coupled by a layer ganrobust does not know (not BatchNorm in batch mode nor a minibatch "
                   "standard deviation layer): scored and attacked in whole batches with masks")
        return {"coupled": self.coupled, "layer": self.layer, "max_score_change": self.change,
                "measured": self.tested, "batch": self.n, "pad_to_multiple_of": group, "note": how}


@dataclass
class ModelChecks:
    """Shared by a scorer and every copy of it (frozen, conditioned, a search copy): once per model."""

    coupling: Coupling | None = None
    group: int | None = None
    group_searched: bool = False
    channels_last: bool | None = None
    notes: list[str] = field(default_factory=list)


def coupling_layers(module: nn.Module, bn: BatchNormMode) -> list[str]:
    """Layers known to couple a batch: BatchNorm scored with batch statistics, and minibatch
    standard deviation layers (StyleGAN's ``MinibatchStdLayer``, ProGAN's; by class name)."""
    out = []
    for name, m in module.named_modules():
        kind = type(m).__name__
        if isinstance(m, _BatchNorm) and bn is BatchNormMode.BATCH:
            out.append(f"{name or 'D'} ({kind}, bn='batch')")
        elif "minibatch" in kind.lower().replace("_", "") or "batchstd" in kind.lower().replace("_", ""):
            group = getattr(m, "group_size", None)
            out.append(f"{name or 'D'} ({kind}" + (f", group {group})" if group is not None else ")"))
    return out


def detect_coupling(score: ScoreFn, x: torch.Tensor, c: torch.Tensor | None, module: nn.Module,
                    bn: BatchNormMode, group: Callable[[], int | None]) -> Coupling:
    """Score ``x`` (B >= 2) and its first half (a multiple of the group D needs) and compare."""
    from ganrobust.module_state import fixed_noise

    x = x.detach()
    n = x.shape[0]
    layers = coupling_layers(module, bn)
    if bn is BatchNormMode.BATCH:  # known: no extra forward on the training path (a robust D's loss)
        return Coupling(True, ", ".join(layers) or None, math.nan, tested=False, n=n)
    with torch.no_grad():
        with fixed_noise(x.device):
            full = score(x, c)
        g = group() or 1
        k = (n // 2) // g * g
        if not 0 < k < n:
            return Coupling(bool(layers), ", ".join(layers) or None, math.nan, tested=False, n=n)
        with fixed_noise(x.device):
            sub = score(x[:k], None if c is None else c[:k])
    change = float((sub - full[:k]).abs().max())
    scale = max(1.0, float(full.abs().max()))
    coupled = change > COUPLING_TOLERANCE * scale or not math.isfinite(change)
    return Coupling(coupled, (", ".join(layers) or None) if coupled else None, change, n=n)


def score_padded(scores: ScoreFn, checks: ModelChecks, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """``scores(x, c)`` for a model that may refuse some batch sizes: a batch that fails is scored
    once more after :func:`find_group` (once per model) found the group the model needs; batches
    are then padded to a multiple of it with (detached) copies of their first rows."""
    n, group = x.shape[0], checks.group
    if group and n % group:
        pad = padded_rows(n, group, x.device)[n:]
        return scores(torch.cat([x, x.detach().index_select(0, pad)]),
                      None if c is None else torch.cat([c, c.index_select(0, pad)]))[:n]
    try:
        return scores(x, c)
    except RuntimeError:
        if checks.group_searched or n < 2:
            raise
        checks.group_searched = True
        found = find_group(scores, x, c)
        if not found or found == 1:
            raise
        checks.group = found
        return score_padded(scores, checks, x, c)


def find_group(score: ScoreFn, x: torch.Tensor, c: torch.Tensor | None) -> int | None:
    """The smallest ``g`` such that batches of every size in ``g · GROUP_MULTIPLES`` score (rows of
    ``x`` repeated); None when there is none up to ``MAX_GROUP``."""
    def works(size: int) -> bool:
        rows = torch.arange(size, device=x.device) % x.shape[0]
        try:
            score(x.index_select(0, rows), None if c is None else c.index_select(0, rows))
            return True
        except RuntimeError:
            return False

    with torch.no_grad():
        for g in range(1, MAX_GROUP + 1):
            if all(works(g * m) for m in GROUP_MULTIPLES):
                return g
    return None


def padded_rows(n: int, group: int, device: torch.device) -> torch.Tensor:
    """Row indices that pad a batch of ``n`` to a multiple of ``group`` with its own first rows."""
    return torch.arange(-(-n // group) * group, device=device) % n


def channels_last_agrees(scorer: "Scorer", x: torch.Tensor) -> bool:
    """Whether a channels-last copy of the scorer's D runs on ``x`` (its first rows) and gives the
    same scores and input gradients as the standard layout, to a tolerance. Checked once per model
    (cached in ``scorer.checks``); any failure means no."""
    checks = scorer.checks
    if checks.channels_last is None:
        checks.channels_last = _agrees(scorer.reference or scorer, x.detach()[:LAYOUT_ROWS])
        if not checks.channels_last:
            checks.notes.append("channels-last layout skipped: it did not give D's own scores")
    return checks.channels_last


def _agrees(scorer: "Scorer", x: torch.Tensor) -> bool:
    try:
        s, _, g = scorer.frozen().margin_grad(x, Direction.FAKE_TO_REAL)
        s_cl, _, g_cl = scorer.frozen(channels_last=True).margin_grad(
            x.contiguous(memory_format=torch.channels_last), Direction.FAKE_TO_REAL)
    except (RuntimeError, ValueError):
        return False
    scale = max(1.0, float(s.abs().max()))
    g_scale = float(g.abs().max())
    return bool(torch.allclose(s_cl, s, rtol=0, atol=LAYOUT_TOLERANCE * scale)
                and torch.allclose(g_cl, g, rtol=0, atol=100 * LAYOUT_TOLERANCE * max(g_scale, 1e-30)))
