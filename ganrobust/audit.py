"""Offline audit of a checkpoint: replay the next generator update, test Odena's three
arguments, sweep D's robustness. Pure computation: returns a report dict, writes nothing.

Odena's arguments why accidental attacks may be rare, each turned into a number:

1. *One step* — G takes one gradient step before D moves, attacks take tens. Replay
   k = 1..K generator steps against the frozen D_t and set each against PGD under the *same*
   budget: the AAR after k steps (flips with ‖p‖∞ <= eps) against linf PGD held to eps, and
   the flip rate after k steps (no norm limit) against linf PGD held to each sample's own
   ‖p_k‖∞ (for k = 1 and k = K) — the iterations PGD needs to match each.
2. *New batch* — each G step uses a new batch of z. Compare the update's flip rate and AAR on
   the batch it was optimised on with fresh held-out latents (the difference with its MOVER
   interval decides "significant").
3. *Parameter space* — G moves θ, not pixels. A parameter-space attack (one step of size
   ``‖θ' − θ‖₂`` along ``∇_θ mean D(G_θ(Z_train))``, ascending on the *training batch* as the
   real update did, scored on the held-out probes) against the real update and against
   pixel-space L2 PGD at the same pixel norm.

Under batch statistics (``bn='batch'``) every attack runs on the whole scored batch with an
``active`` mask, so each sample's clean score inside an attack is the score that classified it.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganrobust.attacks.projected_gradient_descent import pgd
from ganrobust.attacks.robustness_curve import robustness_curve
from ganrobust.attacks.precision import Precision, precision_record
from ganrobust.config import EPS_GRID, PRECISION
from ganrobust.conventions import BatchNormMode, Direction, Norm, ScoreKind
from ganrobust.measure import by_class, measure_update
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.diagnostics import Diagnostic, diagnose_scorer
from ganrobust.gan_call import DEFAULT, GanCall
from ganrobust.module_state import evaluation_state, preserved_rng
from ganrobust.scorer import Scorer
from ganrobust.stats import difference, median_ci, wilson

REPORT_SCHEMA = "ganrobust.report/1"
G_LOSSES = ("ns", "bce", "hinge", "wasserstein")
D_LOSSES = ("ns", "hinge", "wgan")
#: every optimizer class torch.optim ships, by name: what ``--g-optimizer`` accepts
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    name: cls for name, cls in sorted(vars(torch.optim).items())
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer}
#: optimizers whose ``step()`` cannot be replayed as one plain step on G's dense gradients
NOT_REPLAYABLE = {"LBFGS": "its step needs a closure that re-evaluates the loss",
                  "SparseAdam": "it needs sparse gradients and G's are dense"}
#: keys a scheduler or named parameters add to a param group; they say nothing about the class
_GROUP_EXTRAS = frozenset({"params", "param_names", "initial_lr"})


@dataclass(frozen=True)
class AuditConfig:
    n_probes: int = 256
    batch: int = 64                 # the replayed step's latent batch
    eps: float = 8 / 255            # "small" (linf, fraction of range)
    k_steps: int = 10               # argument 1: replayed steps
    pgd_iterations: int = 50        # argument 1: PGD iterations tracked
    g_loss: str = "ns"
    d_loss: str = "ns"              # D's own loss, for the robust copy's fine-tuning: ns | hinge | wgan
    d_clip: float | None = None     # WGAN weight clipping after each fine-tuning step (the run's own)
    g_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.5, 0.999)
    efficiency_steps: int = 10
    min_norm_probes: int = 64
    eps_grid: tuple[float, ...] = EPS_GRID
    l2_scale: float = 16.0          # l2 grid = eps_grid * l2_scale (fractions of the range)
    g_bn: BatchNormMode = BatchNormMode.BATCH
    seed: int = 0
    precision: str = PRECISION      # search precision of eps*, curves, efficiency (fp32|bf16|fp16|auto)
    precision_check: int = 16       # probes re-attacked with a float32 search (precision-weaker)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.coerce(self.precision).value)
        if self.precision_check < 0:
            raise ValueError(f"expected precision_check >= 0, got {self.precision_check}")
        if self.g_loss not in G_LOSSES:
            raise ValueError(f"expected --g-loss among {G_LOSSES}, got {self.g_loss!r}")
        if self.d_loss not in D_LOSSES:
            raise ValueError(f"expected a D loss among {D_LOSSES}, got {self.d_loss!r}")
        if self.d_clip is not None and not self.d_clip > 0:
            raise ValueError(f"expected a positive d_clip (WGAN weight clipping), got {self.d_clip}")
        for name in ("n_probes", "batch", "k_steps", "pgd_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        if not 0 < self.eps <= 1:
            raise ValueError(f"expected 0 < eps <= 1 (fraction of the data range), got {self.eps}")
        if self.g_lr <= 0:
            raise ValueError(f"expected a positive --g-lr, got {self.g_lr}")
        if not all(0 <= b < 1 for b in self.g_betas):
            raise ValueError(f"expected --g-betas in [0, 1), got {self.g_betas}")
        if self.seed < 0:
            raise ValueError(f"expected a --seed >= 0, got {self.seed}")


def generator_loss(kind: str, s: torch.Tensor) -> torch.Tensor:
    """ns: softplus(−s) (non-saturating); bce: −softplus(s) (the saturating minimax loss);
    hinge and wasserstein: −s."""
    if kind == "ns":
        return F.softplus(-s).mean()
    if kind == "bce":
        return -F.softplus(s).mean()
    return -s.mean()


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class called ``name`` (``--g-optimizer`` or a checkpoint's record)."""
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise ValueError(f"expected a torch.optim optimizer class for G ({', '.join(OPTIMIZERS)}), got {name!r}; "
                         f"pass --g-optimizer NAME with the class whose step G's optimizer takes, or --fresh-optimizer")
    if name in NOT_REPLAYABLE:
        raise ValueError(f"G's optimizer {name} cannot be replayed: {NOT_REPLAYABLE[name]}; pass --fresh-optimizer "
                         f"(a fresh Adam) or --g-optimizer NAME for another class")
    return cls


@functools.lru_cache(maxsize=None)
def _group_keys(cls: type[torch.optim.Optimizer]) -> frozenset[str] | None:
    """The hyperparameter names a param group of ``cls`` holds (None if it cannot be built on a 2-D tensor)."""
    try:
        opt = cls([nn.Parameter(torch.zeros(2, 2))])
    except Exception:  # an optimizer with required arguments or unusual parameter needs
        return None
    return frozenset(opt.param_groups[0]) - _GROUP_EXTRAS


def infer_optimizer_class(state: dict[str, Any]) -> str:
    """The class of a foreign optimizer state, only where it is unambiguous.

    A param group holds every hyperparameter of its class, so its key set names the class; where
    several classes share a key set (Adam and AdamW), they count as one only if they share one
    ``step`` (AdamW is Adam with ``decoupled_weight_decay``, a flag the loaded group carries).
    """
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not groups or not isinstance(groups[0], dict):
        raise ValueError("G's optimizer state has no param_groups, so its class is unknown; "
                         "pass --g-optimizer NAME or --fresh-optimizer")
    keys = frozenset(groups[0]) - _GROUP_EXTRAS
    matches = [name for name, cls in OPTIMIZERS.items() if _group_keys(cls) == keys]
    steps = {OPTIMIZERS[name].step for name in matches}
    if len(steps) == 1:
        return next(name for name in matches if "step" in vars(OPTIMIZERS[name]))
    if matches:
        raise ValueError(f"G's optimizer state fits {' and '.join(matches)} alike, which step differently; "
                         f"pass --g-optimizer NAME")
    raise ValueError(f"G's optimizer state (hyperparameters {sorted(keys)}) matches no torch.optim class of torch "
                     f"{torch.__version__}; pass --g-optimizer NAME or --fresh-optimizer")


def make_optimizer(G: nn.Module, state: dict[str, Any] | None, cls_name: str | None, cfg: AuditConfig
                   ) -> torch.optim.Optimizer:
    """G's optimizer: the checkpoint's (class, hyperparameters and moments as saved) or a fresh one.

    With a state, the class is ``cls_name`` (recorded or ``--g-optimizer``) or inferred from the
    state, and the loaded param groups set every hyperparameter: ``cfg.g_lr``/``g_betas`` only
    configure a fresh optimizer (Adam unless ``cls_name`` says otherwise).
    """
    name = cls_name or ("Adam" if state is None else infer_optimizer_class(state))
    cls = optimizer_class(name)
    fresh = {"lr": cfg.g_lr, **({"betas": cfg.g_betas} if "betas" in (_group_keys(cls) or ()) else {})}
    try:
        opt = cls(G.parameters(), **(fresh if state is None else {}))
    except Exception as err:  # e.g. Muon on G's 1-D parameters
        raise ValueError(f"{name} cannot be built on G's parameters ({_first_line(err)}); "
                         f"pass another --g-optimizer NAME or --fresh-optimizer") from None
    if state is not None:
        try:
            # load_state_dict keeps same-device tensors by reference: without the copy the
            # replay's step would advance the caller's moments in place
            opt.load_state_dict(copy.deepcopy(state))
        except (ValueError, KeyError, RuntimeError, TypeError) as err:
            raise ValueError(f"G's optimizer state in the checkpoint does not fit G with {name} ({_first_line(err)}); "
                             f"pass --g-optimizer NAME or --fresh-optimizer") from None
    return opt


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]


def replay_steps(G: nn.Module, D_scorer: Scorer, opt_state: dict[str, Any] | None, opt_class: str | None,
                 cfg: AuditConfig, latent_shape: tuple[int, ...], k: int, z_first: torch.Tensor,
                 call: GanCall = DEFAULT, c_first: torch.Tensor | None = None) -> list[nn.Module]:
    """k generator steps against the frozen D, on copies: G_1 .. G_k. The first step uses
    ``(z_first, c_first)``, later ones fresh latents (and conditions) from the audit's seed (a
    new batch each step, as in training). G is in train mode, as in a training loop; D scores as
    the scorer says, called as ``call`` says."""
    work = copy.deepcopy(G).train()
    opt = make_optimizer(work, opt_state, opt_class, cfg)
    frozen = D_scorer.frozen()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    states = []
    device = next(work.parameters()).device
    for i in range(k):
        z, c = (z_first, c_first) if i == 0 else call.sample(cfg.batch, latent_shape, gen, device)
        opt.zero_grad(set_to_none=True)
        on = frozen.conditioned(c, call) if call.binds else frozen
        with on.session(), torch.enable_grad():
            loss = generator_loss(cfg.g_loss, on.forward(call.generate(work, z, c)))
        loss.backward()
        try:
            opt.step()
        except (KeyError, RuntimeError, TypeError) as err:  # moments of another class (Adamax's exp_inf ...)
            raise ValueError(f"G's optimizer state does not fit {type(opt).__name__} ({_first_line(err)}); "
                             f"pass --g-optimizer NAME with its class, or --fresh-optimizer") from None
        states.append(copy.deepcopy(work))
    return states


def generate(G: nn.Module, z: torch.Tensor, bn: BatchNormMode, call: GanCall = DEFAULT,
             c: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad(), evaluation_state(G, bn):
        return call.generate(G, z, c)


def _flat_params(G: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in G.parameters()])


def param_space_attack(G: nn.Module, scorer: Scorer, z: torch.Tensor, size: float, bn: BatchNormMode,
                       call: GanCall = DEFAULT, c: torch.Tensor | None = None) -> nn.Module:
    """θ + size·g/‖g‖ with g = ∇_θ mean s(G_θ(z, c)): the steepest parameter step of the given size."""
    attacked = copy.deepcopy(G)
    frozen = scorer.frozen().conditioned(c, call) if call.binds else scorer.frozen()
    params = [p for p in attacked.parameters() if p.requires_grad]
    with frozen.session(), torch.enable_grad(), evaluation_state(attacked, bn):
        objective = frozen.forward(call.generate(attacked, z, c)).mean()
        grads = torch.autograd.grad(objective, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    norm = torch.sqrt(sum((g**2).sum() for g in grads)).clamp_min(1e-30)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(g * (size / norm))
    return attacked


def _rates(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("aar", "flip_rate", "noise_flip_rate", "efficiency", "cos_z", "linf", "l2")}


def finetune_robust_d(D: nn.Module, G: nn.Module, real: torch.Tensor, *, steps: int, latent_shape: tuple[int, ...],
                      cfg: AuditConfig, bounds: tuple[float, float], lr: float = 2e-4, call: GanCall = DEFAULT,
                      real_c: torch.Tensor | None = None) -> nn.Module:
    """An adversarially trained copy of D: ``steps`` Adam steps of the PGD robust loss
    (ganrobust.robust, both directions, eps = the audit's eps) against G's samples and ``real``,
    with the run's own D loss (``cfg.d_loss``: a critic keeps the Wasserstein loss and its
    weight clipping ``cfg.d_clip``; it is not turned into a non-saturating classifier)."""
    from ganrobust.robust import RobustDLoss

    robust = copy.deepcopy(D).train().requires_grad_(True)
    opt = torch.optim.Adam(robust.parameters(), lr=lr, betas=(0.5, 0.999))
    loss_fn = RobustDLoss(method="pgd", eps=cfg.eps, steps=5, loss=cfg.d_loss, bounds=bounds, seed=cfg.seed,
                          call=call if call.binds else None)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    device = next(robust.parameters()).device
    for _ in range(steps):
        idx = torch.randint(0, real.shape[0], (cfg.batch,), generator=gen)
        z, c = call.sample(cfg.batch, latent_shape, gen, device)
        fake = generate(G, z, cfg.g_bn, call, c)
        opt.zero_grad(set_to_none=True)
        c_real = None if real_c is None else real_c[idx].to(device)
        loss_fn(robust, real[idx].to(device), fake, c_real, c).backward()
        opt.step()
        if cfg.d_clip is not None:
            with torch.no_grad():
                for p in robust.parameters():
                    p.clamp_(-cfg.d_clip, cfg.d_clip)
    return robust.eval()


def audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
              opt_state: dict[str, Any] | None = None, opt_class: str | None = None, cfg: AuditConfig = AuditConfig(),
              real: torch.Tensor | None = None, progress: Callable[[str], None] | None = None,
              robust_d_steps: int = 0, call: GanCall = DEFAULT, real_labels: torch.Tensor | None = None
              ) -> dict[str, Any]:
    """The whole audit of one (G, D) pair; returns the report's measured sections.

    ``call`` says how to draw ``(z, c)`` and call G and D (conditional GANs); ``real_labels``
    (N,) are the class labels of ``real``, which a conditional D needs to score real samples."""
    # G's forward in the replay may draw (dropout, noise layers): seed it, in a fork, so the
    # audit is reproducible and the caller's global RNG is left exactly as it was
    device = next(G.parameters()).device
    with preserved_rng(device):
        torch.manual_seed(cfg.seed)
        return _audit_gan(G, D, scorer_options=scorer_options, latent_shape=latent_shape, opt_state=opt_state,
                          opt_class=opt_class, cfg=cfg, real=real, progress=progress, robust_d_steps=robust_d_steps,
                          call=call, real_labels=real_labels)


def _audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
               opt_state: dict[str, Any] | None, opt_class: str | None, cfg: AuditConfig, real: torch.Tensor | None,
               progress: Callable[[str], None] | None, robust_d_steps: int, call: GanCall = DEFAULT,
               real_labels: torch.Tensor | None = None) -> dict[str, Any]:
    tick = progress or (lambda _msg: None)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = next(G.parameters()).device
    # every metric is per (z, c) probe; the default adapter draws exactly z ~ N(0, I) as before
    Z, C = call.sample(cfg.n_probes, latent_shape, gen, device)
    Z_train, C_train = call.sample(cfg.batch, latent_shape, gen, device)
    cond = call.conditional
    bind = call.binds  # D called through the adapter (conditions, or a custom call)
    scorer = Scorer(D, **scorer_options)
    real_c: torch.Tensor | None = None
    if cond and real is not None:
        if real_labels is None:
            raise ValueError("a conditional D scores real samples with their labels, and --data has none; pass "
                             "labelled data (an image folder with one sub-folder per class, digits, shapes, an .npz "
                             "with y)")
        real_c = call.condition_of_labels(real_labels).to(device)
    if cond and scorer_options.get("kind") == "critic" and scorer_options.get("tau") is None:
        raise ValueError("a conditional critic D: pass its threshold with --tau-style options (calibration on real "
                         "samples is not supported for conditional critics)")
    x = generate(G, Z, cfg.g_bn, call, C)
    if scorer_options.get("kind") == "critic" and scorer_options.get("tau") is None:
        if real is None:
            raise ValueError("a critic D needs real samples to calibrate tau: pass --data")
        scorer = scorer.calibrate(real[: cfg.n_probes].to(device), x)
    base = scorer  # D(x) scorer; below, scorers bound to the conditions of the batch they score
    if bind:
        scorer = base.conditioned(C, call)
    min_norm = MinimumNormAttack(norm=Norm.LINF, bisection_steps=6, precision=cfg.precision,
                                 precision_check=cfg.precision_check)

    tick("replaying the next generator update")
    steps = replay_steps(G, base, opt_state, opt_class, cfg, latent_shape, cfg.k_steps, Z_train, call, C_train)
    theta, theta_next = _flat_params(G), _flat_params(steps[0])
    update_size = float((theta_next - theta).norm())
    x_next = generate(steps[0], Z, cfg.g_bn, call, C)
    tick("measuring the update")
    update = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                            min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed,
                            precision=cfg.precision)

    tick("argument 1: one step")
    fake_t = torch.from_numpy(update.samples["fake"]).to(device)
    xs_k = [generate(Gk, Z, cfg.g_bn, call, C) for Gk in steps]
    one_step = []
    for k, xk in enumerate(xs_k, 1):
        m = measure_update(scorer, x, xk, eps=cfg.eps, efficiency_steps=0, noise_draws=0)
        one_step.append({"k": k, "flip_rate": m.summary["flip_rate"], "aar": m.summary["aar"],
                         "linf": m.summary["linf"]})
    # like with like: the AAR (flips with linf <= eps) against PGD held to eps; the flip rate
    # (no norm limit) against PGD held to each sample's own ||p_k||_inf, for k = 1 and k = K
    pgd_curve = _pgd_iteration_curve(scorer, x, fake_t, torch.full_like(fake_t, scorer.bounds.to_data(cfg.eps),
                                                                        dtype=x.dtype), cfg)
    own_budget: list[dict[str, Any]] = []
    for k in sorted({1, len(xs_k)}):
        own = Norm.LINF.of(xs_k[k - 1] - x)
        curve = _pgd_iteration_curve(scorer, x, fake_t & (own > 0), own.clamp_min(1e-12), cfg, n=int(fake_t.sum()))
        own_budget.append({"k": k, "pgd": curve})
    by_k = {row["k"]: row["pgd"] for row in own_budget}
    for row in one_step:
        row["pgd_iterations_for_same_aar"] = _iterations_to_reach(pgd_curve, row["aar"])
        row["pgd_iterations_for_same_flip_rate"] = (_iterations_to_reach(by_k[row["k"]], row["flip_rate"])
                                                    if row["k"] in by_k else None)

    tick("argument 2: new batch")
    xt, xt_next = generate(G, Z_train, cfg.g_bn, call, C_train), generate(steps[0], Z_train, cfg.g_bn, call, C_train)
    trained_on = measure_update(base.conditioned(C_train, call) if bind else scorer, xt, xt_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps, seed=cfg.seed)
    new_batch = {"trained_batch": _rates(trained_on.summary), "fresh_latents": _rates(update.summary),
                 "n_trained": cfg.batch, "n_fresh": cfg.n_probes,
                 "difference": {key: difference(trained_on.summary[key], update.summary[key])
                                for key in ("flip_rate", "aar")}}

    tick("argument 3: parameter space")
    # the attack ascends on the batch the real update was computed on (Z_train), and both are
    # scored on the held-out probes: argument 3 alone, not mixed with argument 2's new batch
    attacked = param_space_attack(G, base, Z_train, update_size, cfg.g_bn, call, C_train)
    x_param = generate(attacked, Z, cfg.g_bn, call, C)
    param = measure_update(scorer, x, x_param, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps, seed=cfg.seed)
    l2_param = torch.from_numpy(param.samples["l2"]).to(device)
    moved = l2_param > 0
    x_pix, _, _ = pgd(scorer.frozen(), x, l2_param.clamp_min(1e-12), norm=Norm.L2, direction=Direction.FAKE_TO_REAL,
                      steps=cfg.efficiency_steps, rel_stepsize=2.5 / cfg.efficiency_steps, random_start=False,
                      early_stop=False, generator=torch.Generator(device=device).manual_seed(cfg.seed), active=moved)
    pixel = measure_update(scorer, x, x_pix, eps=cfg.eps, efficiency_steps=0, seed=cfg.seed)
    param_space = {"update_size_theta": update_size, "attacked_on": "training batch (Z_train), scored on probes Z",
                   "real_update": _rates(update.summary),
                   "parameter_attack": _rates(param.summary), "pixel_pgd_same_norm": _rates(pixel.summary)}

    tick("robustness sweep")
    robustness: list[dict[str, Any]] = []
    eps_star: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    real_scorer = base.conditioned(None if real_c is None else real_c[: cfg.n_probes], call) if bind else scorer
    sets = [("fake->real", x, scorer)] + ([("real->fake", real[: cfg.n_probes].to(device), real_scorer)]
                                          if real is not None else [])
    for direction, xs, sc in sets:
        for norm, grid in (("linf", cfg.eps_grid), ("l2", tuple(e * cfg.l2_scale for e in cfg.eps_grid))):
            curve = robustness_curve(sc, xs, grid, norm=norm, direction=direction, seed=cfg.seed,
                                     precision=cfg.precision)
            robustness += curve.rows()
            eps_star[f"{norm} {direction}"] = curve.median_eps_star.to_dict()
            clean[direction] = curve.clean_accuracy.to_dict()
    diagnostics = [d.to_dict() for d in diagnose_scorer(scorer, x)] + [d.to_dict() for d in update.diagnostics]
    if real is not None and clean.get("real->fake", {}).get("value", 1.0) < 0.5:
        diagnostics.append(Diagnostic.make(
            "real-called-fake", f"D calls {1 - clean['real->fake']['value']:.0%} of real samples fake "
                                f"(bn={scorer.bn.value})").to_dict())
    gradients = {"fake": _grad_norms(scorer, x)}
    if real is not None:
        r = real[: cfg.n_probes].to(device)
        k = min(len(r), len(x))
        alpha = torch.rand((k,) + (1,) * (x.dim() - 1), generator=gen).to(device)
        gradients["real"] = _grad_norms(real_scorer, r)
        # interpolates are scored with the real sample's condition
        mid_scorer = real_scorer.rows(torch.arange(k, device=device)) if cond else scorer
        gradients["interpolated"] = _grad_norms(mid_scorer, alpha * r[:k] + (1 - alpha) * x[:k])

    robust_d = None
    if robust_d_steps > 0:
        if real is None:
            raise ValueError("--robust-d needs real samples to train on: pass --data")
        tick("fine-tuning a robust D")
        D_rob = finetune_robust_d(D, G, real, steps=robust_d_steps, latent_shape=latent_shape, cfg=cfg,
                                  bounds=(scorer.bounds.lo, scorer.bounds.hi), call=call, real_c=real_c)
        rob_scorer = Scorer(D_rob, **scorer_options)
        if bind:
            rob_scorer = rob_scorer.conditioned(C, call)
        if rob_scorer.kind is ScoreKind.CRITIC and scorer_options.get("tau") is None:
            # a critic's threshold belongs to its own snapshot: calibrated on the robust copy
            rob_scorer = rob_scorer.calibrate(real[: cfg.n_probes].to(device), x)
        same = measure_update(rob_scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                              min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed,
                              precision=cfg.precision)
        rows = []
        for which, sc in (("standard", scorer), ("robust", rob_scorer)):
            for r in robustness_curve(sc, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                                      precision=cfg.precision).rows():
                rows.append({**r, "discriminator": which})
        real_probe = real[: cfg.n_probes].to(device)
        real_probe_c = None if real_c is None else real_c[: cfg.n_probes]
        accuracy = {which: wilson(int((sc.conditioned(real_probe_c, call).score(real_probe) >= sc.tau).sum())
                                  if bind else int((sc.score(real_probe) >= sc.tau).sum()),
                                  real_probe.shape[0]).to_dict()
                    for which, sc in (("standard", scorer), ("robust", rob_scorer))}
        robust_d = {"steps": robust_d_steps, "real_called_real": accuracy,
                    "method": f"pgd linf eps={cfg.eps:.4g}, 5 steps, both directions, {cfg.d_loss} loss",
                    "tau": {"standard": scorer.tau, "robust": rob_scorer.tau},
                    "standard": _rates(update.summary), "robust": _rates(same.summary), "robustness": rows,
                    "difference": {key: difference(same.summary[key], update.summary[key])
                                   for key in ("flip_rate", "aar")}}

    labels = call.labels(C)
    conditions: dict[str, Any] = {}
    if cond:
        conditions = {"gan_call": call.describe()}
        if labels is not None:
            update.samples["label"] = labels.cpu().numpy()
            conditions["by_class"] = by_class(update.samples, call.classes)
    return {
        **conditions,
        "precision": precision_record(cfg.precision, x.device),
        "robust_d": robust_d,
        "summary": {"aar": update.summary["aar"], "flip_rate": update.summary["flip_rate"],
                    "noise_flip_rate": update.summary["noise_flip_rate"], "ratio": update.summary["ratio"],
                    "cos_z": update.summary["cos_z"], "efficiency": update.summary["efficiency"],
                    "eps_star": update.summary["eps_star"], "linf": update.summary["linf"],
                    "n": update.summary["n"], "n_fake": update.summary["n_fake"], "tau": scorer.tau},
        "update": update.summary,
        "odena": {"one_step": {"steps": one_step, "pgd": pgd_curve, "pgd_own_budget": own_budget}, "new_batch": new_batch, "param_space": param_space},
        "robustness": robustness,
        "robustness_summary": {"median_eps_star": eps_star, "clean_accuracy": clean, "input_gradient_norm": gradients},
        "diagnostics": diagnostics,
        "samples": update.samples,
        "images": {"x": x[:8].cpu(), "x_next": x_next[:8].cpu(), "x_pgd": _pgd_within(scorer, x, x_next, cfg, first=8)[:8].cpu()},
    }


def _pgd_within(scorer: Scorer, x: torch.Tensor, x_next: torch.Tensor, cfg: AuditConfig, first: int) -> torch.Tensor:
    """L2 PGD within each update's own ‖p‖₂ for the ``first`` probes (attacked inside the whole
    scored batch): the perturbation the update could have been."""
    l2 = Norm.L2.of(x_next - x)
    out, _, _ = pgd(scorer.frozen(), x, l2.clamp_min(1e-12), norm=Norm.L2, direction=Direction.FAKE_TO_REAL,
                    steps=max(cfg.efficiency_steps, 1), rel_stepsize=2.5 / max(cfg.efficiency_steps, 1),
                    random_start=False, early_stop=False, generator=torch.Generator(device=x.device).manual_seed(cfg.seed),
                    active=(l2 > 0) & (torch.arange(x.shape[0], device=x.device) < first))
    return out


def _pgd_iteration_curve(scorer: Scorer, x: torch.Tensor, active: torch.Tensor, eps_data: torch.Tensor,
                         cfg: AuditConfig, n: int | None = None) -> list[dict[str, Any]]:
    """Share of the ``active`` samples that linf PGD (per-sample budgets ``eps_data``, data
    units) has flipped after t = 0..T iterations, over ``n`` samples (default: the active ones).
    The whole scored batch is attacked with a mask, so batch statistics stay those that scored it."""
    n = int(active.sum()) if n is None else n
    if not n:
        return []
    _, iters, ok = pgd(scorer.frozen(), x, eps_data, norm=Norm.LINF, direction=Direction.FAKE_TO_REAL,
                       steps=cfg.pgd_iterations, rel_stepsize=0.1, random_start=False, early_stop=True,
                       generator=torch.Generator(device=x.device).manual_seed(cfg.seed), active=active)
    ok = ok & active
    return [{"iterations": t, "flip_rate": wilson(int((ok & (iters <= t)).sum()), n).to_dict()}
            for t in range(cfg.pgd_iterations + 1)]


def _iterations_to_reach(curve: list[dict[str, Any]], target: dict[str, Any]) -> int | None:
    """PGD iterations whose flip rate first reaches ``target``'s value (0 for a zero target;
    None when PGD never reaches it within the curve)."""
    value = target.get("value")
    if not curve or value is None or value != value:
        return None
    if value <= 0:
        return 0
    return next((r["iterations"] for r in curve if r["flip_rate"]["value"] >= value - 1e-12), None)


def _grad_norms(scorer: Scorer, x: torch.Tensor) -> dict[str, float | int]:
    _, _, g = scorer.margin_grad(x, Direction.FAKE_TO_REAL)
    return median_ci(g.reshape(g.shape[0], -1).norm(dim=1).cpu().numpy()).to_dict()


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    out = asdict(cfg)
    out["g_bn"] = cfg.g_bn.value
    return out


def _pct(est: dict[str, Any]) -> str:
    return f"{est['value']:.1%} [{est['ci_low']:.1%}, {est['ci_high']:.1%}]"


def _iters(n: int | None, total: int) -> str:
    return f"{n} iteration(s)" if n is not None else f"more than {total} iterations (not reached)"


def _significance(d: dict[str, Any] | None) -> str:
    if not d:
        return "no difference can be estimated (no fake-classified probe on one side)"
    verdict = "a significant difference" if d["significant"] else "no significant difference"
    if d.get("ci_low") is None or d["ci_low"] != d["ci_low"]:
        return f"{verdict} (difference {d['value']:+.1%}; no interval: {d.get('note') or 'too few probes'})"
    return f"{verdict} (difference {d['value']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}], 95% MOVER interval)"


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """One sentence per argument, computed from the numbers."""
    out = {}
    one = report["odena"]["one_step"]
    steps = one["steps"]
    total = len(one.get("pgd") or []) - 1
    first, last = steps[0], steps[-1]
    if not first["flip_rate"].get("n"):
        out["one_step"] = "no probe is classified fake: there is nothing for an update to flip"
    else:
        sentence = (f"one replayed generator step flips {_pct(first['flip_rate'])} of fake-classified probes, "
                    f"{_pct(first['aar'])} within linf <= eps (AAR); {len(steps)} steps flip {last['flip_rate']['value']:.1%} "
                    f"(AAR {last['aar']['value']:.1%})")
        if "pgd_iterations_for_same_aar" in first:
            sentence += (f". Linf PGD held to eps reaches the one-step AAR in "
                         f"{_iters(first['pgd_iterations_for_same_aar'], total)}; PGD held to each probe's own "
                         f"update size ||p||_inf reaches the one-step flip rate in "
                         f"{_iters(first.get('pgd_iterations_for_same_flip_rate'), total)}")
        out["one_step"] = sentence
    nb = report["odena"]["new_batch"]
    a, b = nb["trained_batch"]["flip_rate"], nb["fresh_latents"]["flip_rate"]
    diff = (nb.get("difference") or {}).get("flip_rate")
    if "difference" not in nb:  # a report written before differences were stored
        diff = difference(a, b)
    out["new_batch"] = (f"flip rate {a['value']:.1%} on the batch the step was optimised on vs {b['value']:.1%} on fresh "
                        f"latents: {_significance(diff)}")
    ps = report["odena"]["param_space"]
    mixed = "" if ps.get("attacked_on") else " (this report's attack ascended on the probes themselves, so argument 2 is mixed in)"
    out["param_space"] = (f"at the update's parameter norm, a parameter-space attack flips "
                          f"{ps['parameter_attack']['flip_rate']['value']:.1%}, the real update "
                          f"{ps['real_update']['flip_rate']['value']:.1%}, pixel PGD at the same pixel norm "
                          f"{ps['pixel_pgd_same_norm']['flip_rate']['value']:.1%}{mixed}")
    rob = report.get("robust_d")
    if rob and rob.get("difference"):
        out["robust_d"] = (f"the same update flips {rob['robust']['flip_rate']['value']:.1%} of the probes an adversarially "
                           f"fine-tuned D calls fake vs {rob['standard']['flip_rate']['value']:.1%} for the checkpoint's D: "
                           f"{_significance(rob['difference']['flip_rate'])}")
    return out


def audit_snapshot(G_before: nn.Module, G_after: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any],
                   Z: torch.Tensor, cfg: AuditConfig, real: torch.Tensor | None = None, C: torch.Tensor | None = None,
                   call: GanCall = DEFAULT) -> dict[str, Any]:
    """One persisted step of a watched run: the exact recorded update against the exact D
    snapshot, and D's linf fake->real robustness curve at that step. A critic's threshold is
    calibrated on this snapshot (``real`` and the step's own samples), never carried over."""
    scorer = Scorer(D, **scorer_options)
    x, x_next = generate(G_before, Z, cfg.g_bn, call, C), generate(G_after, Z, cfg.g_bn, call, C)
    if scorer.kind is ScoreKind.CRITIC and scorer_options.get("tau") is None:
        if real is None:
            raise ValueError("a critic D needs real samples to calibrate tau at each snapshot: pass --data")
        scorer = scorer.calibrate(real[: Z.shape[0]].to(x.device), x)
    if call.binds:
        scorer = scorer.conditioned(C, call)
    m = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                       min_norm=MinimumNormAttack(norm=Norm.LINF, bisection_steps=6, precision=cfg.precision),
                       min_norm_probes=cfg.min_norm_probes, seed=cfg.seed, precision=cfg.precision)
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed,
                             precision=cfg.precision)
    return {"update": m.summary, "robustness": curve.rows(), "median_eps_star": curve.median_eps_star.to_dict()}
