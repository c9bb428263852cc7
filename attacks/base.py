"""The attack template: one ``__call__`` owns input checks, units, the float32 verification and
the result (:mod:`ganrobust.attacks.result`); subclasses implement only :meth:`Attack.run`, and
measurement runs that same search inside its scored batch with :meth:`Attack.search`.

Budgets enter as a *fraction of the data range* (``8/255`` means ``8/255 * (hi - lo)`` in
data units) and every result reports both units.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch

from ganrobust.attacks.precision import Precision, resolve_precision
from ganrobust.attacks.result import AttackResult, Search
from ganrobust.conventions import Bounds, Direction, DirectionLike, Norm, NormLike
from ganrobust.diagnostics import Diagnostic
from ganrobust.scorer import Scorer


class Attack:
    """Base of every attack, native or backend.

    Call as ``attack(scorer, x, eps=8/255, direction="fake->real", seed=0)``. Subclasses set
    ``minimum_norm = True`` when they search for the smallest adversarial perturbation; for
    them ``eps`` is optional and caps the search.
    """

    minimum_norm: ClassVar[bool] = False
    backend: ClassVar[str] = "native"
    loss: ClassVar[str] = "margin"
    norm: Norm
    #: precision of the search (gradient attacks set it with :meth:`_set_precision`)
    precision: str = "fp32"
    #: samples re-attacked with a float32 search to check a reduced-precision one (0: none)
    precision_check: int = 0

    def __init__(self, *, norm: NormLike) -> None:
        self.norm = Norm(norm)

    def _set_precision(self, precision: "Precision | str", precision_check: int) -> None:
        self.precision = Precision.coerce(precision).value
        if precision_check < 0:
            raise ValueError(f"expected precision_check >= 0 (samples re-attacked in float32), got {precision_check}")
        self.precision_check = int(precision_check)

    def _params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v.value if hasattr(v, 'value') else v!r}"
                           for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def __call__(
        self,
        scorer: Scorer,
        x: torch.Tensor,
        *,
        eps: float | torch.Tensor | None = None,
        direction: DirectionLike = Direction.FAKE_TO_REAL,
        seed: int = 0,
        active: torch.Tensor | None = None,
    ) -> AttackResult:
        """Attack ``x`` (B, ...). ``active`` (B,) bool selects the samples to attack; the others
        stay in the batch unperturbed. Under batch statistics (``bn='batch'``) a sample's score
        depends on its batch, so attack the whole scored batch with a mask rather than a slice:
        then every score inside the attack comes from the decision function that classified it."""
        if not isinstance(scorer, Scorer):
            raise ValueError(f"expected a ganrobust.Scorer, got {type(scorer).__name__}; wrap D with Scorer(D)")
        direction = Direction(direction)
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected a batch x of shape (B, ...), got {shape}")
        x = x.detach()
        scorer.bounds.check(x)
        eps_data = self._budget(eps, x, scorer.bounds)
        tau = scorer.tau
        generator = torch.Generator(device=x.device).manual_seed(int(seed))
        with torch.no_grad():
            s_clean = scorer(x)
        crossed = direction.crossed(s_clean, tau)
        if active is not None:
            if not isinstance(active, torch.Tensor) or active.shape != (x.shape[0],):
                got = tuple(active.shape) if isinstance(active, torch.Tensor) else type(active).__name__
                raise ValueError(f"expected active as a bool mask of shape ({x.shape[0]},), got {got}")
            active = active.to(device=x.device, dtype=torch.bool)
        skip = crossed if active is None else crossed | ~active
        # native searches run on a frozen (channels-last) copy, in the attack's precision;
        # clean scores and the final verification use the user's scorer in float32, so
        # success is defined by their D exactly whatever the search ran in
        native = self.backend == "native"
        precision = resolve_precision(self.precision, x.device, scorer=scorer, x=x) if native else Precision.FP32
        work, x_work = scorer.for_attack(x, precision=precision) if native else (scorer, x)
        x_adv, iterations, result_diagnostics = self.run(
            work, x_work, eps_data, direction, skip, generator, seed)
        if x_adv.shape != x.shape:
            raise RuntimeError(f"{self!r} returned shape {tuple(x_adv.shape)} for inputs of shape {tuple(x.shape)}")
        x_adv = scorer.bounds.clamp(x_adv.detach()).contiguous()
        if self.minimum_norm and native:
            x_adv = settle(scorer, x, x_adv, direction, ~skip & (x_adv != x).flatten(1).any(1),
                           SETTLE_STEPS if precision is Precision.FP32 else SETTLE_STEPS_REDUCED)
        result = self._verify(scorer, x, x_adv, eps_data, direction, s_clean, crossed, skip, active,
                              iterations, result_diagnostics, precision)
        if precision is not Precision.FP32:
            # samples a reduced-precision search could not resolve for the float32 D: where the
            # search claims a crossing that float32 denies (a margin below bf16's rounding), or
            # a minimum norm that float32 never confirmed. They are searched again in float32.
            retry = result.attacked & ~result.success
            if not self.minimum_norm and retry.any():
                with torch.no_grad():
                    retry &= direction.crossed(work(x_adv), tau)
            # Under batch statistics a sample's score depends on every other sample of the batch:
            # retry samples searched on their own (the others put back to clean) and spliced into
            # this batch give a batch that no search saw and the verification scores anew. There,
            # the whole batch is searched again in float32 and the batch with more successes kept.
            whole = scorer.check_batch(x).whole_batch
            full: AttackResult | None = None
            if retry.any() and whole:
                full = self._float32()(scorer, x, eps=eps, direction=direction, seed=seed, active=active)
                result = _more_successful(result, full)
            elif retry.any():
                r32 = self._float32()(scorer, x, eps=eps, direction=direction, seed=seed, active=retry)
                fix = _expand(retry & r32.success, x)
                result = self._verify(scorer, x, torch.where(fix, r32.x_adv, result.x_adv), eps_data, direction,
                                      s_clean, crossed, skip, active, result.iterations + r32.iterations,
                                      result.diagnostics, precision)
            if self.precision_check:
                self._check_precision(result, scorer, x, eps, seed, whole=whole, float32_run=full)
        return result

    def _float32(self) -> "Attack":
        """This attack with a float32 search and no precision check."""
        reference = copy.copy(self)
        reference.precision, reference.precision_check = Precision.FP32.value, 0
        return reference

    def _verify(self, scorer: Scorer, x: torch.Tensor, x_adv: torch.Tensor, eps_data: torch.Tensor | None,
                direction: Direction, s_clean: torch.Tensor, crossed: torch.Tensor, skip: torch.Tensor,
                active: torch.Tensor | None, iterations: torch.Tensor, result_diagnostics: list[Diagnostic],
                precision: Precision) -> AttackResult:
        """The result of a candidate ``x_adv`` as the user's scorer (float32) sees it."""
        with torch.no_grad():
            s_adv = scorer(x_adv)
        success = direction.crossed(s_adv, scorer.tau)
        norms = self.norm.of(x_adv - x)
        if eps_data is not None:
            # a backend that exceeded the budget did not find a valid adversarial
            over = norms > eps_data * (1 + 1e-5) + 1e-7
            if over.any() and not self.minimum_norm:
                result_diagnostics.append(Diagnostic.make(
                    "budget-exceeded",
                    f"{self!r} returned {int(over.sum())} perturbation(s) beyond the budget; "
                    f"they were counted as failures"))
            success = success & ~over
        # samples already crossed are returned as they are, with norm 0; samples outside
        # ``active`` unperturbed, not successful, with norm NaN (not measured)
        success = torch.where(crossed, torch.ones_like(success), success)
        if active is not None:
            success = success & (active | crossed)
        keep = success & ~skip
        # under batch statistics every verdict holds for this batch only: attacked samples that
        # failed stay where the search left them (putting them back would move the others' scores)
        place = ~skip if scorer.check_batch(x).whole_batch else keep
        x_adv = torch.where(_expand(place, x), x_adv, x)
        s_adv = torch.where(place, s_adv, s_clean)
        norms = torch.where(keep, norms, torch.zeros_like(norms))
        if self.minimum_norm:
            norms = torch.where(success, norms, torch.full_like(norms, math.inf))
        if active is not None:
            norms = torch.where(active | crossed, norms, torch.full_like(norms, math.nan))
        return AttackResult(
            x_adv=x_adv, success=success, clean_crossed=crossed, scores_clean=s_clean,
            scores_adv=s_adv, norms=norms, iterations=iterations.to(torch.long),
            eps=eps_data, norm=self.norm, direction=direction, bounds=scorer.bounds,
            attack=repr(self), backend=self.backend, loss=self.loss,
            diagnostics=result_diagnostics, active=active, precision=precision.value,
        )

    def _check_precision(self, result: AttackResult, scorer: Scorer, x: torch.Tensor,
                         eps: float | torch.Tensor | None, seed: int, *, whole: bool = False,
                         float32_run: AttackResult | None = None) -> None:
        """Re-attack the first ``precision_check`` attacked samples with a float32 search (same
        seed, inside the whole batch) and flag a reduced-precision search that did worse. Under
        batch statistics (``whole``) the float32 search attacks every sample the call attacked,
        as the reduced one did (``float32_run``: that search, when it already ran), and the first
        ``precision_check`` are compared."""
        attacked = result.attacked
        sub = attacked & (attacked.cumsum(0) <= self.precision_check)
        n = int(sub.sum())
        if n == 0:
            return
        if float32_run is not None:
            r32 = float32_run
        else:
            r32 = self._float32()(scorer, x, eps=eps, direction=result.direction, seed=seed,
                                  active=result.active if whole else sub)
        if self.minimum_norm:
            low, full = result.norms[sub & result.success], r32.norms[sub & r32.success]
            if full.numel() == 0:
                return
            worse = low.numel() < full.numel() or float(low.median()) > 1.02 * float(full.median())
            what = (f"median minimum norm {float(low.median()) if low.numel() else math.inf:.4g} against "
                    f"{float(full.median()):.4g} (float32 search) on {n} sample(s)")
        else:
            rate_low = float((result.success & sub).sum()) / n
            rate_full = float((r32.success & sub).sum()) / n
            worse = rate_full - rate_low > 0.01
            what = f"success {rate_low:.1%} against {rate_full:.1%} (float32 search) on {n} sample(s)"
        if worse:
            result.diagnostics.append(Diagnostic.make(
                "precision-weaker", f"{self!r} searched in {result.precision}: {what}"))

    def _budget(self, eps: float | torch.Tensor | None, x: torch.Tensor, bounds: Bounds) -> torch.Tensor | None:
        if eps is None:
            if self.minimum_norm:
                return None
            raise ValueError(f"{type(self).__name__} needs a budget: pass eps= as a fraction of the data range, e.g. eps=8/255")
        e = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
        if e.dim() == 0:
            e = e.expand(x.shape[0])
        if e.shape != (x.shape[0],):
            raise ValueError(f"expected eps as a scalar or one value per sample ({x.shape[0]},), got shape {tuple(e.shape)}")
        if not torch.isfinite(e).all() or (e <= 0).any():
            raise ValueError(f"expected eps > 0 (a fraction of the data range, e.g. 8/255), got {_show(e)}")
        if self.norm is Norm.LINF and (e > 1).any():
            raise ValueError(f"expected a linf eps <= 1 (the whole data range), got {_show(e)}")
        return e * bounds.width

    def run(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, direction: Direction,
            crossed: torch.Tensor, generator: torch.Generator, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, list[Diagnostic]]:
        """Return ``(x_adv, iterations per sample, diagnostics)``; ``eps`` is in data units."""
        raise NotImplementedError

    def search(self, scorer: Scorer, x: torch.Tensor, eps: torch.Tensor | None, *, direction: Direction,
               generator: torch.Generator, active: torch.Tensor | None = None, seed: int = 0,
               on_copy: bool = True) -> Search:
        """This attack's bare search of ``x`` (B, ...) inside the whole scored batch, as measurement
        runs it: ``eps`` (B,) in data units, ``active`` (B,) the samples searched (all by default),
        ``generator`` the caller's (a random start draws from it). No float32 verification and no
        samples put back: the caller scores ``x_adv`` with its own scorer. The search runs on a
        frozen copy in this attack's precision (``on_copy=False``: on ``scorer`` itself, for a D
        being trained). ``crossed``: where the search's scorer sees ``x_adv`` on the target side."""
        work = scorer.frozen(precision=resolve_precision(self.precision, x.device, scorer=scorer, x=x)) \
            if on_copy else scorer
        skip = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device) if active is None else ~active
        x_adv, iterations, _ = self.run(work, x, eps, direction, skip, generator, seed)
        with torch.no_grad():
            crossed = direction.crossed(work(x_adv), work.tau) & ~skip
        return Search(x_adv, iterations.to(torch.long), crossed)


#: scale factors ``1 + k`` tried by :func:`settle`: float noise of another conv layout, and the
#: larger rounding of a reduced-precision (bf16/fp16) search
SETTLE_STEPS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
SETTLE_STEPS_REDUCED = SETTLE_STEPS + (3e-2, 1e-1, 3e-1)


def settle(scorer: Scorer, x: torch.Tensor, x_adv: torch.Tensor, direction: Direction,
           candidates: torch.Tensor, steps: tuple[float, ...] = SETTLE_STEPS) -> torch.Tensor:
    """Make boundary adversarials hold for the user's D.

    A minimum-norm adversarial sits on the boundary by construction, and the search runs on a
    copy whose numerics differ by float noise (another conv layout). Where the user's scorer
    does not confirm a ``candidate``, its perturbation is scaled by ``1 + k`` for growing
    ``k`` (``steps``) until it does: the smallest repair, only where needed.
    """
    delta = x_adv - x
    out = x_adv
    with torch.no_grad():
        for k in steps:
            trial = out if k == 0.0 else scorer.bounds.clamp(x + (1 + k) * delta)
            ok = direction.crossed(scorer(trial), scorer.tau)
            fix = candidates & ok
            out = torch.where(_expand(fix, x), trial, out)
            candidates = candidates & ~ok
            if not candidates.any():
                break
    return out


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape((-1,) + (1,) * (like.dim() - 1))


def _show(e: torch.Tensor) -> str:
    vals = e.unique()
    return f"{vals.item():g}" if vals.numel() == 1 else np.array2string(vals.cpu().numpy(), threshold=5)


def _more_successful(reduced: AttackResult, full: AttackResult) -> AttackResult:
    """Of two searches of the same whole batch, the one whose batch the float32 D finds more
    adversarial in (ties: the float32 search); the iterations of both are counted."""
    best = full if int(full.success.sum()) >= int(reduced.success.sum()) else reduced
    return replace(best, iterations=reduced.iterations + full.iterations,
                               diagnostics=reduced.diagnostics + full.diagnostics)
