"""Diagnostics: warnings that are part of the output, each with a doc entry.

Modelled on AutoAttack's ``checks.py``: every code below says when it is raised and what it
means, and the same text appears in reports and in ``docs`` of :data:`DOCS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from ganrobust.scorer import Scorer
    from ganrobust.stats import Estimate


class AttackLike(Protocol):
    """What compare_white_box reads of an AttackResult."""

    attack: str

    @property
    def success_rate(self) -> "Estimate": ...


@dataclass(frozen=True)
class DiagnosticDoc:
    raised_if: str
    explanation: str


DOCS: dict[str, DiagnosticDoc] = {
    "saturated-scores": DiagnosticDoc(
        raised_if="the median |s - tau| of the scored batch exceeds 30 (logit units)",
        explanation=(
            "softplus/cross-entropy losses on such logits have input gradients that underflow "
            "to exactly zero in float32, so cross-entropy attacks (torchattacks PGD, foolbox "
            "PGD, APGD-CE) report ~0% success on a discriminator that a margin attack flips "
            "easily. ganrobust's native attacks use the margin ±(s - tau) and are unaffected."),
    ),
    "sigmoid-output": DiagnosticDoc(
        raised_if=("kind='logit' but every score lies in [0, 1], or kind='prob' could not find "
                   "a trailing nn.Sigmoid to strip and fell back to a clamped logit"),
        explanation=(
            "attacking through a sigmoid loses the gradient wherever it saturates. Build the "
            "scorer with kind='prob' so a trailing nn.Sigmoid is stripped, or make D return "
            "the pre-sigmoid logit."),
    ),
    "zero-gradient": DiagnosticDoc(
        raised_if="the input gradient of the margin is exactly zero for some samples",
        explanation=(
            "gradient attacks cannot move these samples (dead ReLUs, saturation, "
            "non-differentiable ops, detach() inside D); their robustness is unmeasured, not "
            "proven. Try a minimum-norm backend (foolbox FMN) or random restarts."),
    ),
    "stochastic-discriminator": DiagnosticDoc(
        raised_if="two identical calls of the scorer on the same batch give different scores",
        explanation=(
            "D is random at audit time (noise injection, dropout kept active, minibatch "
            "discrimination on random pairs). Attack success then depends on the draw; "
            "average over draws (EOT) or make D deterministic in eval mode."),
    ),
    "weak-white-box": DiagnosticDoc(
        raised_if="a gradient (white-box) attack flips fewer samples than random noise or a black-box attack at the same budget",
        explanation=(
            "a sign of gradient masking or of a broken attack configuration (too few steps, "
            "a wrong step size): the white-box number underestimates the vulnerability."),
    ),
    "cross-entropy-masking": DiagnosticDoc(
        raised_if="a backend attack that differentiates a cross-entropy loss succeeds on fewer "
                  "samples than ganrobust's margin attack of the same budget, on saturated scores",
        explanation=(
            "cross-entropy on the two-logit adapter [0, s - tau] is softplus(s - tau), whose "
            "gradient vanishes once |s - tau| is large; the backend's low number is an "
            "artefact of the loss, not robustness."),
    ),
    "real-called-fake": DiagnosticDoc(
        raised_if="with real data given, D classifies fewer than half of the real samples as real",
        explanation=(
            "most often BatchNorm in eval mode: a loop that calls D on separate real and fake "
            "batches trains with batch statistics, and the running statistics (an average of "
            "both) describe neither. Score with bn='batch' (CLI: --bn batch) to see the D that "
            "training saw; otherwise every real->fake number here is vacuous."),
    ),
    "budget-exceeded": DiagnosticDoc(
        raised_if="a backend returned a perturbation larger than the requested budget",
        explanation="those samples are counted as failures and returned unperturbed.",
    ),
    "precision-weaker": DiagnosticDoc(
        raised_if=("an attack searched in reduced precision (bf16/fp16) and, on the subsample "
                   "re-attacked with a float32 search (the attack's precision_check), its success "
                   "was lower by more than 1 point, or its median minimum norm higher by more "
                   "than 2%"),
        explanation=(
            "every reported result was still verified by the user's D in float32, so no number "
            "is wrong, but the search missed adversarials that float32 finds: the reported "
            "success is a looser lower bound (eps* a looser upper bound). Re-run with "
            "precision='fp32' (--precision fp32) for the tightest numbers."),
    ),
    "eps-star-not-found": DiagnosticDoc(
        raised_if=("the minimum-norm attack found no adversarial example for some fake-classified probes it "
                   "attacked (their eps* is inf), after starting from the update itself wherever x' was one"),
        explanation=(
            "their eps* is unknown, not infinite: no adversarial was found within the search (DeepFool, then PGD "
            "over the whole data range). A median eps* counting them as inf is a looser upper bound, and inf (saying "
            "nothing) when they are half or more. A batch-coupled D (minibatch standard deviation, BatchNorm in batch mode), a "
            "stochastic D or vanishing input gradients are the usual causes; see the other diagnostics."),
    ),
}


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str

    @classmethod
    def make(cls, code: str, message: str) -> "Diagnostic":
        if code not in DOCS:
            raise KeyError(f"undocumented diagnostic code {code!r}")
        return cls(code, message)

    @property
    def doc(self) -> DiagnosticDoc:
        return DOCS[self.code]

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message,
                "raised_if": self.doc.raised_if, "explanation": self.doc.explanation}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


#: median |s - tau| above which cross-entropy gradients are considered saturated
SATURATION_MARGIN = 30.0


def diagnose_scorer(scorer: "Scorer", x: torch.Tensor) -> list[Diagnostic]:
    """Checks on a discriminator before trusting attack numbers on it (one batch ``x``)."""
    from ganrobust.conventions import Direction, ScoreKind

    found: list[Diagnostic] = []
    # one session: the scorer forks the RNG per session, so two separate calls of a
    # stochastic D would replay the same draw
    with torch.no_grad(), scorer.session():
        s1, s2 = scorer.forward(x), scorer.forward(x)
    if not torch.equal(s1, s2):
        diff = (s1 - s2).abs().max().item()
        found.append(Diagnostic.make(
            "stochastic-discriminator", f"two identical calls differ by up to {diff:.3g}"))
    if scorer.has_tau:
        gap = (s1 - scorer.tau).abs().median().item()
        if gap > SATURATION_MARGIN:
            found.append(Diagnostic.make(
                "saturated-scores", f"median |s - tau| = {gap:.3g} > {SATURATION_MARGIN:g}"))
    if scorer.kind is ScoreKind.LOGIT and s1.numel() > 1 and s1.min() >= 0 and s1.max() <= 1:
        found.append(Diagnostic.make(
            "sigmoid-output", "kind='logit' but every score lies in [0, 1]: is D ending in a sigmoid?"))
    if scorer.kind is ScoreKind.PROB and scorer.prob_conversion == "clamped":
        found.append(Diagnostic.make(
            "sigmoid-output", "no trailing nn.Sigmoid found; probabilities were converted with a clamped logit"))
    if scorer.has_tau:
        _, _, g = scorer.margin_grad(x, Direction.FAKE_TO_REAL)
        zero = (g.reshape(g.shape[0], -1).abs().amax(dim=1) == 0)
        if zero.any():
            found.append(Diagnostic.make(
                "zero-gradient", f"input gradient is exactly zero for {int(zero.sum())} of {zero.numel()} samples"))
    return found


def compare_white_box(white: "AttackLike", control: "AttackLike", slack: float = 0.0) -> list[Diagnostic]:
    """Flag a gradient attack that flips fewer samples than a control at the same budget.

    ``control`` is random noise or a black-box attack; both results must cover the same
    samples. ``slack`` tolerates sampling noise (a share of the attacked samples).
    """
    w, c = white.success_rate, control.success_rate
    if w.n and c.n and w.value + slack < c.value:
        return [Diagnostic.make(
            "weak-white-box",
            f"{white.attack} flipped {w.value:.1%} of {w.n} samples, fewer than "
            f"{control.attack} ({c.value:.1%}) at the same budget")]
    return []
