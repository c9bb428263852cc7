"""Loading the GAN checkpoints people actually have. (One module: recognising a layout and
building the models it needs are one decision chain — format, keys, architecture, load — whose
error messages depend on each other.)

* ganrobust's own ``checkpoint.pt`` and run directories (architecture references inside);
* a dict of G and D state dicts under the usual keys (``G``/``D``, ``generator``/``discriminator``,
  ``netG``/``netD``, ...), or Lightning's ``state_dict`` with ``generator.``/``discriminator.``
  prefixes and ``optimizer_states``;
* the pytorch/examples pair of files (``netG_epoch_24.pth`` + ``netD_epoch_24.pth``);
* TorchScript archives (for either file of a pair).

Loading is ``weights_only=True`` unless the user passes ``trust=True`` (the CLI's
``--trust-checkpoint``). Every problem raises :class:`CheckpointError`: one line saying what is
wrong and how to fix it.

Files of a ganrobust run (``checkpoint.pt``, ``snapshots/*.safetensors``) are checked against the
SHA-256 the run's manifest recorded before they are read (``verify=False``, the CLI's
``--no-verify``, skips that). A checkpoint inside a run directory also brings what the run's
manifest recorded: the score convention and, for ``ganrobust train`` runs, the training config.
"""

from __future__ import annotations

import importlib
import json
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from ganrobust.runs.store import (CHECKPOINT, CheckpointError, IntegrityError, load_snapshot, persisted_steps,
                                  read_manifest, read_sibling_manifest, verify_run_file)

PAIRS = [("G", "D"), ("generator", "discriminator"), ("netG", "netD"), ("gen", "disc"), ("g", "d"),
         ("generator_state_dict", "discriminator_state_dict"), ("G_state_dict", "D_state_dict")]
G_OPTIMIZER_KEYS = ("optimizer_G", "optimizerG", "opt_g", "optimizer_g", "g_optimizer", "optim_g", "optG")
STRIP = ("module.", "_orig_mod.")


@dataclass
class LoadedGAN:
    G: nn.Module
    D: nn.Module
    source: str                                  # which format was recognised
    latent_shape: tuple[int, ...]
    optimizer_g: dict[str, Any] | None = None    # G's optimizer state, for an exact replay
    optimizer_g_class: str | None = None
    score: dict[str, Any] = field(default_factory=dict)   # kind, tau, bn as recorded
    bounds: tuple[float, float] = (-1.0, 1.0)
    notes: list[str] = field(default_factory=list)
    train_config: dict[str, Any] | None = None   # the run manifest's train_config (ganrobust train)
    origins: dict[str, str] = field(default_factory=dict)  # score key -> "run manifest" | "checkpoint" | ...


def _read(path: Path, trust: bool) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory without checkpoint.pt; pass a checkpoint file or a run directory")
    if _is_torchscript(path):
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as err:
            raise CheckpointError(f"{path} looks like a TorchScript archive but does not load: {_first_line(err)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        if not trust and "Unsupported global" in str(err):  # a pickled class, not bad bytes
            raise CheckpointError(
                f"{path} holds pickled Python objects (a whole saved module?), which weights-only loading refuses: "
                f"unpickling can run arbitrary code. If you trust its source, pass --trust-checkpoint") from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {_first_line(err)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, ImportError,
            ModuleNotFoundError, TypeError, KeyError, IndexError, UnicodeDecodeError, MemoryError, OverflowError) as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or not a checkpoint?): "
                              f"{_first_line(err)}") from None


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("/constants.pkl") or name.split("/", 1)[-1].startswith("code/")
                       for name in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def _strip(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in STRIP:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        sum(isinstance(v, torch.Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def _find_pair(obj: dict[str, Any]) -> tuple[Any, Any, str] | None:
    for g_key, d_key in PAIRS:
        if g_key in obj and d_key in obj:
            return obj[g_key], obj[d_key], f"keys {g_key!r}/{d_key!r}"
    state = obj.get("state_dict")
    if isinstance(state, dict):
        for g_pre, d_pre in (("generator.", "discriminator."), ("netG.", "netD."), ("G.", "D."), ("gen.", "disc.")):
            g = {k[len(g_pre):]: v for k, v in state.items() if k.startswith(g_pre)}
            d = {k[len(d_pre):]: v for k, v in state.items() if k.startswith(d_pre)}
            if g and d:
                return g, d, f"state_dict prefixes {g_pre!r}/{d_pre!r}"
    return None


def _check_finite(state: dict[str, torch.Tensor], which: str, where: str) -> None:
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where}: {which} weight {key!r} contains NaN or inf (a diverged run?); "
                                  f"audit an earlier checkpoint")


# -- architectures --------------------------------------------------------------------------

def _count(state: dict[str, torch.Tensor], pattern: str) -> list[str]:
    return sorted({m.group(1) for k in state if (m := re.match(pattern, k))}, key=int)


def infer_dcgan(g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor], *, sigmoid: bool
                ) -> tuple[nn.Module, nn.Module]:
    """Build a DCGAN pair whose hyperparameters are read off the tensor shapes."""
    try:
        w0 = g_state["main.0.weight"]                     # (nz, ngf * 2^(n-1), 4, 4)
        convs = [i for i in _count(g_state, r"main\.(\d+)\.weight") if g_state[f"main.{i}.weight"].dim() == 4]
        last = g_state[f"main.{convs[-1]}.weight"]        # (ngf, nc, 4, 4)
        image_size = {4: 32, 5: 64}[len(convs)]
        G = DCGANGenerator(nz=w0.shape[0], ngf=last.shape[0], nc=last.shape[1], image_size=image_size)
        sn = any("parametrizations" in k for k in d_state)
        d0 = d_state["main.0.parametrizations.weight.original" if sn else "main.0.weight"]  # (ndf, nc, 4, 4)
        D = DCGANDiscriminator(ndf=d0.shape[0], nc=d0.shape[1], image_size=image_size, sigmoid=sigmoid, spectral_norm=sn)
    except (KeyError, IndexError) as err:
        raise CheckpointError(f"the weights do not look like a DCGAN pair (no {err}); pass --generator-class/"
                              f"--discriminator-class for your architecture") from None
    return G, D


def infer_mlp(g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor]) -> tuple[nn.Module, nn.Module]:
    try:
        g_layers = _count(g_state, r"net\.(\d+)\.weight")
        d_keys = [k for k in d_state if k.endswith("weight") and "net." in k]
        first_g = g_state[f"net.{g_layers[0]}.weight"]
        last_g = g_state[f"net.{g_layers[-1]}.weight"]
        sn = any("parametrizations" in k for k in d_state)
        G = MLPGenerator(nz=first_g.shape[1], hidden=first_g.shape[0], dim=last_g.shape[0], depth=len(g_layers) - 1)
        d_first = d_state[sorted(d_keys)[0]]
        D = MLPDiscriminator(dim=d_first.shape[1], hidden=d_first.shape[0], depth=len(_count(d_state, r"net\.(\d+)\.")) - 1,
                             spectral_norm=sn)
    except (KeyError, IndexError) as err:
        raise CheckpointError(f"the weights do not look like an MLP pair (no {err}); pass --generator-class") from None
    return G, D


def import_class(spec: str) -> type[nn.Module]:
    """``package.module:Class`` -> the class, with a clear error."""
    if ":" not in spec:
        raise CheckpointError(f"expected an import path like package.module:Class, got {spec!r}")
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as err:  # an import can fail in many ways
        raise CheckpointError(f"cannot import {spec!r}: {_first_line(err)}; is the package installed and on PYTHONPATH?") from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise CheckpointError(f"{spec!r} is not an nn.Module class")
    return obj


def _build(spec: str, kwargs: dict[str, Any] | str | None) -> nn.Module:
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as err:
            raise CheckpointError(f"keyword arguments must be a JSON object, got {kwargs!r} ({err.msg})") from None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise CheckpointError(f"keyword arguments must be a JSON object, got {kwargs!r}")
    cls = import_class(spec)
    try:
        return cls(**(kwargs or {}))
    except Exception as err:
        raise CheckpointError(f"{spec}(**{kwargs}) failed: {_first_line(err)}") from None


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], which: str, where: str) -> None:
    own = module.state_dict()
    mismatched = [f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}"
                  for key, value in state.items() if key in own and own[key].shape != value.shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if not (missing or unexpected or mismatched):
        try:
            module.load_state_dict(state, strict=True)
            return
        except RuntimeError as err:
            raise CheckpointError(f"{where}: {which} weights do not load into {type(module).__name__}: "
                                  f"{_first_line(err)}") from None
    parts = []
    if missing:
        parts.append(f"missing {missing[:3]}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:3]}")
    if mismatched:
        parts.append(f"shape mismatch {mismatched[:2]}")
    raise CheckpointError(f"{where}: {which} weights do not fit {type(module).__name__} ({'; '.join(parts)}); "
                          f"check --arch or the class and its kwargs")


def _latent_shape(G: nn.Module) -> tuple[int, ...]:
    if isinstance(G, DCGANGenerator):
        return (G.nz, 1, 1)
    nz = getattr(G, "nz", None)
    if isinstance(nz, int):
        return (nz,)
    for m in G.modules():
        if isinstance(m, (nn.Linear,)):
            return (m.in_features,)
        if isinstance(m, nn.ConvTranspose2d):
            return (m.in_channels, 1, 1)
    raise CheckpointError("cannot tell the generator's latent size; pass --latent-shape")


def run_models(run_dir: Path) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Fresh G and D built from a run's manifest (the architecture references the hook wrote),
    and the manifest itself."""
    try:
        manifest = read_manifest(run_dir)
    except ValueError as err:
        raise CheckpointError(f"{err}; and there is no checkpoint.pt") from None
    models = manifest.get("models") or {}
    refs = [models.get("generator") or {}, models.get("discriminator") or {}]
    if any(ref.get("kwargs") is None or not ref.get("class") for ref in refs):
        raise CheckpointError(f"{run_dir}: the manifest does not record how to build G and D (their classes keep no "
                              f"'config' dict of constructor arguments), and there is no checkpoint.pt")
    G, D = (_build(ref["class"], ref["kwargs"]) for ref in refs)
    return G, D, manifest


def load_run_snapshot(run_dir: Path, step: int | None = None, *, verify: bool = True) -> LoadedGAN:
    """G (after its update) and D of a persisted snapshot — the last one unless ``step`` is given.

    This is how a run that never wrote ``checkpoint.pt`` (killed, or still running) is audited.
    """
    G, D, manifest = run_models(run_dir)
    steps = persisted_steps(run_dir)
    if not steps:
        raise CheckpointError(f"{run_dir} has no checkpoint.pt and no persisted snapshot yet: the run stopped before "
                              f"its first snapshot (--snapshot-every / WatchConfig.snapshot_every)")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise CheckpointError(f"{run_dir} has no persisted snapshot of step {step}; available: {steps[:10]}")
    where = f"{run_dir} snapshot {step}"
    for module, kind, which in ((G, "G_after", "generator"), (D, "D", "discriminator")):
        state = load_snapshot(run_dir, step, kind, verify=verify)
        _check_finite(state, which, where)
        _load_into(module, state, which, where)
    G.eval()
    D.eval()
    bounds = manifest.get("data_range") or (-1.0, 1.0)
    note = (f"{run_dir} has no checkpoint.pt (the run did not finish): loaded its last persisted snapshot, step {step}; "
            f"snapshots hold no optimizer state, so the replay uses a fresh Adam") if step == steps[-1] else \
        f"loaded the persisted snapshot of step {step}"
    score = dict(manifest.get("score") or {})
    return LoadedGAN(G=G, D=D, source=f"ganrobust run snapshot (step {step})", latent_shape=_latent_shape(G),
                     score=score, bounds=(float(bounds[0]), float(bounds[1])), notes=[note],
                     train_config=manifest.get("train_config"), origins={key: "run manifest" for key in score})


def load_gan(
    path: str | Path | None = None,
    *,
    generator: str | Path | None = None,
    discriminator: str | Path | None = None,
    arch: str | None = None,
    generator_class: str | None = None,
    generator_kwargs: dict[str, Any] | str | None = None,
    discriminator_class: str | None = None,
    discriminator_kwargs: dict[str, Any] | str | None = None,
    d_output: str | None = None,
    trust: bool = False,
    latent_shape: tuple[int, ...] | None = None,
    verify: bool = True,
) -> LoadedGAN:
    """Load G and D from one checkpoint (or run directory) or from a pair of files.

    ``verify`` checks a run's files against the SHA-256 its manifest recorded (CheckpointError on
    a mismatch)."""
    notes: list[str] = []
    score: dict[str, Any] = {}
    origins: dict[str, str] = {}
    train_config: dict[str, Any] | None = None
    bounds = (-1.0, 1.0)
    opt_state = opt_class = None
    arch_refs: dict[str, Any] = {}

    if path is None:
        if generator is None or discriminator is None:
            raise CheckpointError("pass a checkpoint, or both --generator and --discriminator files")
        where = f"{generator} + {discriminator}"
        g_obj, d_obj = _read(Path(generator), trust), _read(Path(discriminator), trust)
        source = "pair of files"
        if d_output is None and arch == "dcgan":
            d_output = "prob"  # pytorch/examples' netD ends in nn.Sigmoid
            notes.append("assumed the pytorch/examples D with a trailing Sigmoid (kind='prob'); pass --d-output logit if not")
            origins["kind"] = "default"
    else:
        p = Path(path)
        if p.is_dir():
            if not (p / CHECKPOINT).exists():
                return load_run_snapshot(p, verify=verify)
            p = p / CHECKPOINT
        where = str(p)
        manifest = read_sibling_manifest(p) if p.exists() and not p.is_dir() else None
        if manifest is not None:
            verify_run_file(p.parent, p.name, verify)  # before a single byte of it is unpickled
        obj = _read(p, trust)
        if isinstance(obj, dict) and obj.get("format") == "ganrobust.checkpoint/1":
            source = "ganrobust checkpoint"
            g_obj, d_obj = obj["G"], obj["D"]
            opt_state, opt_class = obj.get("optimizer_G"), obj.get("optimizer_G_class")
            arch_refs = obj.get("arch") or {}
            score = dict(obj.get("score") or {})
            origins = {key: "checkpoint" for key in score}
            bounds = tuple(obj.get("data_range") or bounds)  # type: ignore[assignment]
            if manifest is not None:  # the run it belongs to: what the run recorded wins
                recorded = dict(manifest.get("score") or {})
                score.update(recorded)
                origins.update({key: "run manifest" for key in recorded})
                train_config = manifest.get("train_config")
        elif isinstance(obj, dict):
            found = _find_pair(obj)
            if found is None:
                raise CheckpointError(
                    f"{where}: no generator/discriminator found; expected keys like G/D, generator/discriminator or "
                    f"netG/netD, or a Lightning state_dict with generator./discriminator. prefixes "
                    f"(top-level keys: {sorted(map(str, obj))[:8]})")
            g_obj, d_obj, how = found
            source = f"dict ({how})"
            for key in G_OPTIMIZER_KEYS:
                if isinstance(obj.get(key), dict):
                    opt_state = obj[key]
            if opt_state is None and isinstance(obj.get("optimizer_states"), list):
                opt_state = "lightning"  # resolved below, once G's parameter count is known
                lightning_states = obj["optimizer_states"]
        elif isinstance(obj, nn.Module):
            raise CheckpointError(f"{where} is a single module; pass the generator and discriminator as a pair "
                                  f"(--generator G.pt --discriminator D.pt)")
        else:
            raise CheckpointError(f"{where} holds a {type(obj).__name__}, not a checkpoint dict")

    def materialise(obj: Any, which: str) -> tuple[nn.Module | None, dict[str, torch.Tensor] | None]:
        if isinstance(obj, nn.Module):  # trusted whole module or TorchScript
            return obj, None
        if _is_state_dict(obj):
            return None, _strip(obj)
        if isinstance(obj, dict) and _is_state_dict(obj.get("state_dict")):
            return None, _strip(obj["state_dict"])
        raise CheckpointError(f"{where}: the {which} entry is a {type(obj).__name__}, not a state dict or module")

    G, g_state = materialise(g_obj, "generator")
    D, d_state = materialise(d_obj, "discriminator")
    if g_state is not None:
        _check_finite(g_state, "generator", where)
    if d_state is not None:
        _check_finite(d_state, "discriminator", where)

    if G is None or D is None:
        assert g_state is not None or G is not None
        if generator_class or discriminator_class:
            if not (generator_class and discriminator_class):
                raise CheckpointError("pass both --generator-class and --discriminator-class")
            G_new = _build(generator_class, generator_kwargs)
            D_new = _build(discriminator_class, discriminator_kwargs)
        elif arch_refs.get("generator", {}).get("kwargs") is not None and not arch:
            G_new = _build(arch_refs["generator"]["class"], arch_refs["generator"]["kwargs"])
            D_new = _build(arch_refs["discriminator"]["class"], arch_refs["discriminator"]["kwargs"])
        elif arch in ("dcgan", None) and g_state is not None and "main.0.weight" in g_state:
            G_new, D_new = infer_dcgan(g_state, d_state or {}, sigmoid=d_output == "prob")
            notes.append("DCGAN hyperparameters inferred from tensor shapes")
        elif arch == "mlp" or (g_state is not None and any(k.startswith("net.") for k in g_state)):
            G_new, D_new = infer_mlp(g_state or {}, d_state or {})
            notes.append("MLP hyperparameters inferred from tensor shapes")
        else:
            raise CheckpointError(f"{where}: cannot tell the architecture; pass --arch dcgan|mlp or "
                                  f"--generator-class pkg.mod:Class --discriminator-class pkg.mod:Class")
        if G is None:
            assert g_state is not None
            _load_into(G_new, g_state, "generator", where)
            G = G_new
        if D is None:
            assert d_state is not None
            _load_into(D_new, d_state, "discriminator", where)
            D = D_new

    if opt_state == "lightning":
        n_g = len(list(G.parameters()))
        opt_state = next((s for s in lightning_states if isinstance(s, dict) and
                          sum(len(g["params"]) for g in s.get("param_groups", [])) == n_g), None)
        if opt_state is not None:
            notes.append("G's optimizer state matched among Lightning optimizer_states by parameter count")
    if d_output is not None:
        score["kind"] = {"prob": "prob", "logit": "logit", "critic": "critic"}.get(d_output, d_output)
        if origins.get("kind") != "default":  # the pytorch/examples assumption stays a default
            origins["kind"] = "option"
    G.eval()
    D.eval()
    return LoadedGAN(G=G, D=D, source=source, latent_shape=tuple(latent_shape) if latent_shape else _latent_shape(G),
                     optimizer_g=opt_state if isinstance(opt_state, dict) else None, optimizer_g_class=opt_class,
                     score=score, bounds=(float(bounds[0]), float(bounds[1])), notes=notes,
                     train_config=train_config, origins=origins)
