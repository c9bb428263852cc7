"""Offline audit of a checkpoint: replay the next generator update, test Odena's three
arguments, sweep D's robustness. Pure computation: returns a report dict, writes nothing.

Odena's arguments why accidental attacks may be rare, each turned into a number:

1. *One step* — G takes one gradient step before D moves, attacks take tens. Replay
   k = 1..K generator steps against the frozen D_t and compare the flip rate after k steps
   with the PGD iterations (at the same linf budget) that reach the same flip rate.
2. *New batch* — each G step uses a new batch of z. Compare the update's flip rate and AAR on
   the batch it was optimised on with fresh held-out latents.
3. *Parameter space* — G moves θ, not pixels. A parameter-space attack (one step of size
   ``‖θ' − θ‖₂`` along ``∇_θ mean D(G_θ(Z))``) against the real update and against pixel-space
   L2 PGD at the same pixel norm.
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
from ganrobust.config import EPS_GRID
from ganrobust.conventions import BatchNormMode, Direction, Norm
from ganrobust.measure import measure_update
from ganrobust.attacks.minimum_norm import MinimumNormAttack
from ganrobust.diagnostics import Diagnostic, diagnose_scorer
from ganrobust.module_state import evaluation_state, preserved_rng
from ganrobust.scorer import Scorer
from ganrobust.stats import median_ci, wilson

REPORT_SCHEMA = "ganrobust.report/1"
G_LOSSES = ("ns", "bce", "hinge", "wasserstein")
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
    g_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.5, 0.999)
    efficiency_steps: int = 10
    min_norm_probes: int = 64
    eps_grid: tuple[float, ...] = EPS_GRID
    l2_scale: float = 16.0          # l2 grid = eps_grid * l2_scale (fractions of the range)
    g_bn: BatchNormMode = BatchNormMode.BATCH
    seed: int = 0

    def __post_init__(self) -> None:
        if self.g_loss not in G_LOSSES:
            raise ValueError(f"expected --g-loss among {G_LOSSES}, got {self.g_loss!r}")
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
                 cfg: AuditConfig, latent_shape: tuple[int, ...], k: int, z_first: torch.Tensor
                 ) -> list[nn.Module]:
    """k generator steps against the frozen D, on copies: G_1 .. G_k. The first step uses
    ``z_first``, later ones fresh latents from the audit's seed (a new batch each step, as in
    training). G is in train mode, as in a training loop; D scores as the scorer says."""
    work = copy.deepcopy(G).train()
    opt = make_optimizer(work, opt_state, opt_class, cfg)
    frozen = D_scorer.frozen()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    states = []
    device = next(work.parameters()).device
    for i in range(k):
        z = z_first if i == 0 else torch.randn((cfg.batch,) + latent_shape, generator=gen).to(device)
        opt.zero_grad(set_to_none=True)
        with frozen.session(), torch.enable_grad():
            loss = generator_loss(cfg.g_loss, frozen.forward(work(z)))
        loss.backward()
        try:
            opt.step()
        except (KeyError, RuntimeError, TypeError) as err:  # moments of another class (Adamax's exp_inf ...)
            raise ValueError(f"G's optimizer state does not fit {type(opt).__name__} ({_first_line(err)}); "
                             f"pass --g-optimizer NAME with its class, or --fresh-optimizer") from None
        states.append(copy.deepcopy(work))
    return states


def generate(G: nn.Module, z: torch.Tensor, bn: BatchNormMode) -> torch.Tensor:
    with torch.no_grad(), evaluation_state(G, bn):
        return G(z)


def _flat_params(G: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in G.parameters()])


def param_space_attack(G: nn.Module, scorer: Scorer, z: torch.Tensor, size: float, bn: BatchNormMode) -> nn.Module:
    """θ + size·g/‖g‖ with g = ∇_θ mean s(G_θ(z)): the steepest parameter step of the given size."""
    attacked = copy.deepcopy(G)
    frozen = scorer.frozen()
    params = [p for p in attacked.parameters() if p.requires_grad]
    with frozen.session(), torch.enable_grad(), evaluation_state(attacked, bn):
        objective = frozen.forward(attacked(z)).mean()
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
                      cfg: AuditConfig, bounds: tuple[float, float], lr: float = 2e-4) -> nn.Module:
    """An adversarially trained copy of D: ``steps`` Adam steps of the PGD robust loss
    (ganrobust.robust, both directions, eps = the audit's eps) against G's samples and ``real``."""
    from ganrobust.robust import RobustDLoss

    robust = copy.deepcopy(D).train().requires_grad_(True)
    opt = torch.optim.Adam(robust.parameters(), lr=lr, betas=(0.5, 0.999))
    loss_fn = RobustDLoss(method="pgd", eps=cfg.eps, steps=5, bounds=bounds, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    device = next(robust.parameters()).device
    for _ in range(steps):
        idx = torch.randint(0, real.shape[0], (cfg.batch,), generator=gen)
        z = torch.randn((cfg.batch,) + latent_shape, generator=gen).to(device)
        fake = generate(G, z, cfg.g_bn)
        opt.zero_grad(set_to_none=True)
        loss_fn(robust, real[idx].to(device), fake).backward()
        opt.step()
    return robust.eval()


def audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
              opt_state: dict[str, Any] | None = None, opt_class: str | None = None, cfg: AuditConfig = AuditConfig(),
              real: torch.Tensor | None = None, progress: Callable[[str], None] | None = None,
              robust_d_steps: int = 0) -> dict[str, Any]:
    """The whole audit of one (G, D) pair; returns the report's measured sections."""
    # G's forward in the replay may draw (dropout, noise layers): seed it, in a fork, so the
    # audit is reproducible and the caller's global RNG is left exactly as it was
    device = next(G.parameters()).device
    with preserved_rng(device):
        torch.manual_seed(cfg.seed)
        return _audit_gan(G, D, scorer_options=scorer_options, latent_shape=latent_shape, opt_state=opt_state,
                          opt_class=opt_class, cfg=cfg, real=real, progress=progress, robust_d_steps=robust_d_steps)


def _audit_gan(G: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any], latent_shape: tuple[int, ...],
               opt_state: dict[str, Any] | None, opt_class: str | None, cfg: AuditConfig, real: torch.Tensor | None,
               progress: Callable[[str], None] | None, robust_d_steps: int) -> dict[str, Any]:
    tick = progress or (lambda _msg: None)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = next(G.parameters()).device
    Z = torch.randn((cfg.n_probes,) + latent_shape, generator=gen).to(device)
    Z_train = torch.randn((cfg.batch,) + latent_shape, generator=gen).to(device)
    scorer = Scorer(D, **scorer_options)
    x = generate(G, Z, cfg.g_bn)
    if scorer_options.get("kind") == "critic" and scorer_options.get("tau") is None:
        if real is None:
            raise ValueError("a critic D needs real samples to calibrate tau: pass --data")
        scorer = scorer.calibrate(real[: cfg.n_probes].to(device), x)
    min_norm = MinimumNormAttack(norm=Norm.LINF, bisection_steps=6)

    tick("replaying the next generator update")
    steps = replay_steps(G, scorer, opt_state, opt_class, cfg, latent_shape, cfg.k_steps, Z_train)
    theta, theta_next = _flat_params(G), _flat_params(steps[0])
    update_size = float((theta_next - theta).norm())
    x_next = generate(steps[0], Z, cfg.g_bn)
    tick("measuring the update")
    update = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                            min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed)

    tick("argument 1: one step")
    fake = update.samples["fake"]
    one_step = []
    for k, Gk in enumerate(steps, 1):
        xk = generate(Gk, Z, cfg.g_bn)
        m = measure_update(scorer, x, xk, eps=cfg.eps, efficiency_steps=0, noise_draws=0)
        one_step.append({"k": k, "flip_rate": m.summary["flip_rate"], "aar": m.summary["aar"],
                         "linf": m.summary["linf"]})
    x_fake = x[torch.from_numpy(fake).to(device)]
    pgd_curve: list[dict[str, Any]] = []
    if x_fake.shape[0]:
        work = scorer.frozen()
        eps_data = torch.full((x_fake.shape[0],), scorer.bounds.to_data(cfg.eps), device=device)
        _, iters, ok = pgd(work, x_fake, eps_data, norm=Norm.LINF, direction=Direction.FAKE_TO_REAL,
                           steps=cfg.pgd_iterations, rel_stepsize=0.1, random_start=False, early_stop=True,
                           generator=torch.Generator(device=device).manual_seed(cfg.seed))
        for t in range(cfg.pgd_iterations + 1):
            pgd_curve.append({"iterations": t, "flip_rate": wilson(int((ok & (iters <= t)).sum()), len(ok)).to_dict()})
        for row in one_step:
            target = row["flip_rate"]["value"]
            reach = next((r["iterations"] for r in pgd_curve if r["flip_rate"]["value"] >= target), None)
            row["pgd_iterations_for_same_flip_rate"] = reach if target and target > 0 else 0

    tick("argument 2: new batch")
    xt, xt_next = generate(G, Z_train, cfg.g_bn), generate(steps[0], Z_train, cfg.g_bn)
    trained_on = measure_update(scorer, xt, xt_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps, seed=cfg.seed)
    new_batch = {"trained_batch": _rates(trained_on.summary), "fresh_latents": _rates(update.summary),
                 "n_trained": cfg.batch, "n_fresh": cfg.n_probes}

    tick("argument 3: parameter space")
    attacked = param_space_attack(G, scorer, Z, update_size, cfg.g_bn)
    x_param = generate(attacked, Z, cfg.g_bn)
    param = measure_update(scorer, x, x_param, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps, seed=cfg.seed)
    l2_param = torch.from_numpy(param.samples["l2"]).to(device)
    moved = l2_param > 0
    x_pix, _, _ = pgd(scorer.frozen(), x, l2_param.clamp_min(1e-12), norm=Norm.L2, direction=Direction.FAKE_TO_REAL,
                      steps=cfg.efficiency_steps, rel_stepsize=2.5 / cfg.efficiency_steps, random_start=False,
                      early_stop=False, generator=torch.Generator(device=device).manual_seed(cfg.seed), active=moved)
    pixel = measure_update(scorer, x, x_pix, eps=cfg.eps, efficiency_steps=0, seed=cfg.seed)
    param_space = {"update_size_theta": update_size, "real_update": _rates(update.summary),
                   "parameter_attack": _rates(param.summary), "pixel_pgd_same_norm": _rates(pixel.summary)}

    tick("robustness sweep")
    robustness: list[dict[str, Any]] = []
    eps_star: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    sets = [("fake->real", x)] + ([("real->fake", real[: cfg.n_probes].to(device))] if real is not None else [])
    for direction, xs in sets:
        for norm, grid in (("linf", cfg.eps_grid), ("l2", tuple(e * cfg.l2_scale for e in cfg.eps_grid))):
            curve = robustness_curve(scorer, xs, grid, norm=norm, direction=direction, seed=cfg.seed)
            robustness += curve.rows()
            eps_star[f"{norm} {direction}"] = curve.median_eps_star.to_dict()
            clean[direction] = curve.clean_accuracy.to_dict()
    diagnostics = [d.to_dict() for d in diagnose_scorer(scorer, x)]
    if real is not None and clean.get("real->fake", {}).get("value", 1.0) < 0.5:
        diagnostics.append(Diagnostic.make(
            "real-called-fake", f"D calls {1 - clean['real->fake']['value']:.0%} of real samples fake "
                                f"(bn={scorer.bn.value})").to_dict())
    gradients = {"fake": _grad_norms(scorer, x)}
    if real is not None:
        r = real[: cfg.n_probes].to(device)
        k = min(len(r), len(x))
        alpha = torch.rand((k,) + (1,) * (x.dim() - 1), generator=gen).to(device)
        gradients["real"] = _grad_norms(scorer, r)
        gradients["interpolated"] = _grad_norms(scorer, alpha * r[:k] + (1 - alpha) * x[:k])

    robust_d = None
    if robust_d_steps > 0:
        if real is None:
            raise ValueError("--robust-d needs real samples to train on: pass --data")
        tick("fine-tuning a robust D")
        D_rob = finetune_robust_d(D, G, real, steps=robust_d_steps, latent_shape=latent_shape, cfg=cfg,
                                  bounds=(scorer.bounds.lo, scorer.bounds.hi))
        rob_scorer = Scorer(D_rob, **{**scorer_options, "tau": scorer.tau})
        same = measure_update(rob_scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                              min_norm=min_norm, min_norm_probes=cfg.min_norm_probes, seed=cfg.seed)
        rows = []
        for which, sc in (("standard", scorer), ("robust", rob_scorer)):
            for r in robustness_curve(sc, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed).rows():
                rows.append({**r, "discriminator": which})
        real_probe = real[: cfg.n_probes].to(device)
        accuracy = {which: wilson(int((sc.score(real_probe) >= sc.tau).sum()), real_probe.shape[0]).to_dict()
                    for which, sc in (("standard", scorer), ("robust", rob_scorer))}
        robust_d = {"steps": robust_d_steps, "real_called_real": accuracy, "method": f"pgd linf eps={cfg.eps:.4g}, 5 steps, both directions",
                    "standard": _rates(update.summary), "robust": _rates(same.summary), "robustness": rows}

    return {
        "robust_d": robust_d,
        "summary": {"aar": update.summary["aar"], "flip_rate": update.summary["flip_rate"],
                    "noise_flip_rate": update.summary["noise_flip_rate"], "ratio": update.summary["ratio"],
                    "cos_z": update.summary["cos_z"], "efficiency": update.summary["efficiency"],
                    "eps_star": update.summary["eps_star"], "linf": update.summary["linf"],
                    "n": update.summary["n"], "n_fake": update.summary["n_fake"], "tau": scorer.tau},
        "update": update.summary,
        "odena": {"one_step": {"steps": one_step, "pgd": pgd_curve}, "new_batch": new_batch, "param_space": param_space},
        "robustness": robustness,
        "robustness_summary": {"median_eps_star": eps_star, "clean_accuracy": clean, "input_gradient_norm": gradients},
        "diagnostics": diagnostics,
        "samples": update.samples,
        "images": {"x": x[:8].cpu(), "x_next": x_next[:8].cpu(), "x_pgd": _pgd_within(scorer, x[:8], x_next[:8], cfg).cpu()},
    }


def _pgd_within(scorer: Scorer, x: torch.Tensor, x_next: torch.Tensor, cfg: AuditConfig) -> torch.Tensor:
    """L2 PGD within each update's own ‖p‖₂: the perturbation the update could have been."""
    l2 = Norm.L2.of(x_next - x)
    out, _, _ = pgd(scorer.frozen(), x, l2.clamp_min(1e-12), norm=Norm.L2, direction=Direction.FAKE_TO_REAL,
                    steps=max(cfg.efficiency_steps, 1), rel_stepsize=2.5 / max(cfg.efficiency_steps, 1),
                    random_start=False, early_stop=False, generator=torch.Generator(device=x.device).manual_seed(cfg.seed),
                    active=l2 > 0)
    return out


def _grad_norms(scorer: Scorer, x: torch.Tensor) -> dict[str, float | int]:
    _, _, g = scorer.margin_grad(x, Direction.FAKE_TO_REAL)
    return median_ci(g.reshape(g.shape[0], -1).norm(dim=1).cpu().numpy()).to_dict()


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    out = asdict(cfg)
    out["g_bn"] = cfg.g_bn.value
    return out


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """One sentence per argument, computed from the numbers."""
    out = {}
    steps = report["odena"]["one_step"]["steps"]
    first, last = steps[0]["flip_rate"], steps[-1]["flip_rate"]
    flipping = next((row for row in steps if row["flip_rate"]["value"] and row["flip_rate"]["value"] > 0), None)
    sentence = (f"one replayed generator step flips {first['value']:.1%} of fake-classified probes "
                f"[{first['ci_low']:.1%}, {first['ci_high']:.1%}]; {len(steps)} steps flip {last['value']:.1%}")
    if flipping is not None and flipping.get("pgd_iterations_for_same_flip_rate") is not None:
        sentence += (f"; the first flips appear after {flipping['k']} step(s) ({flipping['flip_rate']['value']:.1%}), "
                     f"a rate linf PGD at the same budget reaches in {flipping['pgd_iterations_for_same_flip_rate']} "
                     f"iteration(s)")
    out["one_step"] = sentence
    nb = report["odena"]["new_batch"]
    a, b = nb["trained_batch"]["flip_rate"], nb["fresh_latents"]["flip_rate"]
    overlap = not (a["ci_low"] > b["ci_high"] or b["ci_low"] > a["ci_high"])
    out["new_batch"] = (f"flip rate {a['value']:.1%} on the batch the step was optimised on vs {b['value']:.1%} on fresh "
                        f"latents: {'no significant difference' if overlap else 'a significant difference'} (95% intervals)")
    ps = report["odena"]["param_space"]
    out["param_space"] = (f"at the update's parameter norm, a parameter-space attack flips "
                          f"{ps['parameter_attack']['flip_rate']['value']:.1%}, the real update "
                          f"{ps['real_update']['flip_rate']['value']:.1%}, pixel PGD at the same pixel norm "
                          f"{ps['pixel_pgd_same_norm']['flip_rate']['value']:.1%}")
    return out


def audit_snapshot(G_before: nn.Module, G_after: nn.Module, D: nn.Module, *, scorer_options: dict[str, Any],
                   Z: torch.Tensor, cfg: AuditConfig) -> dict[str, Any]:
    """One persisted step of a watched run: the exact recorded update against the exact D
    snapshot, and D's linf fake->real robustness curve at that step."""
    scorer = Scorer(D, **scorer_options)
    x, x_next = generate(G_before, Z, cfg.g_bn), generate(G_after, Z, cfg.g_bn)
    m = measure_update(scorer, x, x_next, eps=cfg.eps, efficiency_steps=cfg.efficiency_steps,
                       min_norm=MinimumNormAttack(norm=Norm.LINF, bisection_steps=6),
                       min_norm_probes=cfg.min_norm_probes, seed=cfg.seed)
    curve = robustness_curve(scorer, x, cfg.eps_grid, norm="linf", direction="fake->real", seed=cfg.seed)
    return {"update": m.summary, "robustness": curve.rows(), "median_eps_star": curve.median_eps_star.to_dict()}
