"""Loading the GAN checkpoints people actually have. (One module, over 300 lines: recognising a
layout is one decision chain — file, format, keys, nesting, partner file — whose error messages
depend on each other; building the models lives in :mod:`ganrobust.runs.architectures`.)

* ganrobust's own ``checkpoint.pt`` and run directories (architecture references inside);
* a dict of G and D state dicts under the usual keys (``G``/``D``, ``generator``/``discriminator``,
  ``netG``/``netD``, ...), or Lightning's ``state_dict`` with ``generator.``/``discriminator.``
  prefixes and ``optimizer_states``;
* tutorial dicts whose keys end in ``_state_dict`` (``netG_state_dict``, ``optimizerG_state_dict``,
  ...), and any of the above nested under ``state_dict``, ``model_state_dict``, ``model`` or ``ema``;
* one file per network, matched by name (``G.pth``/``D.pth``, ``netG_epoch_24.pth``/
  ``netD_epoch_24.pth``, PyTorch-GAN's ``generator_5.pth``/``discriminator_5.pth``, StudioGAN's
  ``model=G-...pth``/``model=D-...pth`` with ``state_dict`` and ``optimizer`` inside, torch-mimicry's
  ``netG_*.pth`` with ``model_state_dict`` and ``optimizer_state_dict``);
* TorchScript archives (for either file of a pair);
* StyleGAN2-ADA / StyleGAN3 snapshots (``network-snapshot-*.pkl``: a pickle of ``G``, ``D``,
  ``G_ema``, ``augment_pipe`` and ``training_set_kwargs``), only with ``trust=True``: they are
  plain pickles whose networks need StyleGAN's own code (``dnnlib``, ``torch_utils``) importable.

Loading is ``weights_only=True`` unless the user passes ``trust=True`` (the CLI's
``--trust-checkpoint``). Every problem raises :class:`CheckpointError`: one line saying what is
wrong and how to fix it.

Files of a ganrobust run (``checkpoint.pt``, ``snapshots/*.safetensors``) are checked against the
SHA-256 the run's manifest recorded before they are read (``verify=False``, the CLI's
``--no-verify``, skips that). A checkpoint inside a run directory also brings what the run's
manifest recorded: the score convention and, for ``ganrobust train`` runs, the training config.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust.runs.architectures import (build, infer_dcgan, infer_latent_shape, infer_mlp, load_into,
                                         recorded_pair, unrecorded)
from ganrobust.runs.store import (CHECKPOINT, CheckpointError, load_snapshot, persisted_steps,
                                  read_manifest, read_sibling_manifest, verify_run_file)

PAIRS = [("G", "D"), ("generator", "discriminator"), ("netG", "netD"), ("gen", "disc"), ("g", "d"),
         ("gen", "dis"), ("model_G", "model_D"), ("modelG", "modelD"), ("net_G", "net_D")]
G_OPTIMIZER_KEYS = ("optimizer_G", "optimizerG", "opt_g", "optimizer_g", "g_optimizer", "optim_g", "optG",
                    "optim_G", "opt_G", "optimizer_gen", "gen_optimizer", "G_optimizer", "G_optim", "optimizer_generator")
#: containers a pair of networks is often nested under
NESTINGS = ("state_dict", "model_state_dict", "model", "models", "ema", "networks", "nets")
#: keys of a one-network file that hold its weights, and its optimizer's state
NETWORK_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
NETWORK_OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optim", "opt", "optimizer_state")
#: name tokens of a generator file and its discriminator partner (delimited by non-alphanumerics)
FILE_TOKENS = (("netG", "netD"), ("generator", "discriminator"), ("Generator", "Discriminator"),
               ("gen", "dis"), ("gen", "disc"), ("G", "D"), ("g", "d"))
SUFFIX = "_state_dict"
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
    gan_call: dict[str, Any] | None = None      # how the run called G and D (conditional GANs), as recorded
    augment_pipe: nn.Module | None = None       # StyleGAN2-ADA's augmentation pipe (D trains on augmented images)
    stylegan: dict[str, Any] | None = None      # what a StyleGAN snapshot held and what the audit uses of it


def _read(path: Path, trust: bool) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory without checkpoint.pt; pass a checkpoint file or a run directory")
    if path.suffix == ".pkl" and not zipfile.is_zipfile(path):
        return _read_pickle(path, trust)
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


def _read_pickle(path: Path, trust: bool) -> Any:
    """A plain pickle (StyleGAN2-ADA/StyleGAN3 ``network-snapshot-*.pkl``): only when trusted."""
    if not trust:
        raise CheckpointError(f"{path} is a Python pickle (StyleGAN2-ADA/StyleGAN3 snapshots are): unpickling runs code "
                              f"from the file. If you trust its source, pass --trust-checkpoint")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except ModuleNotFoundError as err:
        hint = ("the repository root of stylegan2-ada-pytorch or stylegan3, which holds dnnlib/ and torch_utils/"
                if (err.name or "").split(".")[0] in ("dnnlib", "torch_utils", "training") else
                "the code that defines the networks")
        raise CheckpointError(f"{path} needs module {err.name!r} to unpickle its networks: put {hint} on PYTHONPATH "
                              f"(PYTHONPATH=/path/to/repo ganrobust audit ...)") from None
    except Exception as err:  # unpickling can fail in any way
        raise CheckpointError(f"{path} is not a readable pickle (truncated?): {_first_line(err)}") from None


def _stylegan_snapshot(obj: Any) -> bool:
    """A StyleGAN2-ADA/StyleGAN3 snapshot dict: G and D modules with StyleGAN's attributes."""
    return (isinstance(obj, dict) and isinstance(obj.get("G"), nn.Module) and isinstance(obj.get("D"), nn.Module)
            and all(hasattr(obj["G"], a) for a in ("z_dim", "c_dim", "img_resolution", "img_channels")))


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


def _base(key: str) -> str:
    """``netG_state_dict`` -> ``netG``: the tutorial suffix says nothing about which network."""
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) and len(key) > len(SUFFIX) else key


def _find_pair(obj: dict[str, Any], _depth: int = 0) -> tuple[Any, Any, str] | None:
    """G's and D's entries of a checkpoint dict: usual key pairs (with or without a
    ``_state_dict`` suffix), Lightning prefixes, or either nested one level down."""
    bases = {_base(k): k for k in obj if isinstance(k, str)}
    for g_key, d_key in PAIRS:
        if g_key in bases and d_key in bases:
            g, d = bases[g_key], bases[d_key]
            return obj[g], obj[d], f"keys {g!r}/{d!r}"
    state = obj.get("state_dict")
    if isinstance(state, dict):
        for g_pre, d_pre in (("generator.", "discriminator."), ("netG.", "netD."), ("G.", "D."), ("gen.", "disc.")):
            g = {k[len(g_pre):]: v for k, v in state.items() if k.startswith(g_pre)}
            d = {k[len(d_pre):]: v for k, v in state.items() if k.startswith(d_pre)}
            if g and d:
                return g, d, f"state_dict prefixes {g_pre!r}/{d_pre!r}"
    if _depth == 0:
        for key in NESTINGS:
            inner = obj.get(key)
            if isinstance(inner, dict) and not _is_state_dict(inner):
                found = _find_pair(inner, 1)
                if found is not None:
                    return found[0], found[1], f"{found[2]} under {key!r}"
    return None


def _found_keys(obj: dict[str, Any]) -> str:
    """The keys a checkpoint holds, nested containers included, for a 'nothing matched' error."""
    parts = [", ".join(sorted(map(str, obj))[:12]) + (" ..." if len(obj) > 12 else "")]
    for key in NESTINGS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner:
            parts.append(f"under {key!r}: " + ", ".join(sorted(map(str, inner))[:8]) + (" ..." if len(inner) > 8 else ""))
    return "; ".join(parts)


def _g_optimizer(obj: dict[str, Any]) -> dict[str, Any] | None:
    """G's optimizer state in a pair checkpoint (``optimizerG``, ``optimizerG_state_dict``, ...),
    at the top level or in a nesting container."""
    for where in (obj, *(obj.get(k) for k in NESTINGS)):
        if not isinstance(where, dict):
            continue
        for key, value in where.items():
            if isinstance(key, str) and _base(key) in G_OPTIMIZER_KEYS and isinstance(value, dict):
                return value
    return None


def _network_entry(obj: Any) -> tuple[Any, dict[str, Any] | None, str | None]:
    """A one-network file: (its weights or module, its optimizer state, the key the weights were under)."""
    if not isinstance(obj, dict) or _is_state_dict(obj):
        return obj, None, None
    for key in NETWORK_KEYS:
        if key in obj and (_is_state_dict(obj[key]) or isinstance(obj[key], nn.Module)):
            opt = next((obj[k] for k in NETWORK_OPTIMIZER_KEYS if isinstance(obj.get(k), dict)), None)
            return obj[key], opt, key
    return obj, None, None


def _one_network(obj: Any) -> bool:
    """A file holding one network (bare weights, a module, or weights under ``state_dict``/...)."""
    if isinstance(obj, nn.Module) or _is_state_dict(obj):
        return True
    return isinstance(obj, dict) and _find_pair(obj) is None and _network_entry(obj)[2] is not None


def partner_file(path: Path) -> tuple[Path, Path] | None:
    """``(generator file, discriminator file)`` for one of them, matched by name: the other file
    has the same name with the network's token swapped (``netG``/``netD``, ``generator``/
    ``discriminator``, ``G``/``D`` between non-letters, ...). None when no such file exists."""
    name = path.name
    for g_tok, d_tok in FILE_TOKENS:
        for mine, other, is_g in ((g_tok, d_tok, True), (d_tok, g_tok, False)):
            pattern = rf"(?<![A-Za-z0-9]){re.escape(mine)}(?![A-Za-z0-9])"
            if not re.search(pattern, name):
                continue
            # the same folder, or a sibling folder named the same way (torch-mimicry's netG/ and netD/)
            for candidate in (path.with_name(re.sub(pattern, other, name)),
                              path.parent.with_name(re.sub(pattern, other, path.parent.name)) / re.sub(pattern, other, name)):
                if candidate != path and candidate.is_file():
                    return (path, candidate) if is_g else (candidate, path)
    return None


def _check_finite(state: dict[str, torch.Tensor], which: str, where: str) -> None:
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where}: {which} weight {key!r} contains NaN or inf (a diverged run?); "
                                  f"audit an earlier checkpoint")


def run_models(run_dir: Path) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Fresh G and D built from a run's manifest (the architecture references the hook wrote),
    and the manifest itself."""
    try:
        manifest = read_manifest(run_dir)
    except ValueError as err:
        raise CheckpointError(f"{err}; and there is no checkpoint.pt") from None
    models = manifest.get("models") or {}
    pair = recorded_pair(models, str(run_dir))
    if pair is None:
        raise CheckpointError(unrecorded(models, str(run_dir)) or f"{run_dir}: the manifest does not record how to "
                              f"build G and D, and there is no checkpoint.pt")
    return pair[0], pair[1], manifest


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
        load_into(module, state, which, where)
    G.eval()
    D.eval()
    bounds = manifest.get("data_range") or (-1.0, 1.0)
    note = (f"{run_dir} has no checkpoint.pt (the run did not finish): loaded its last persisted snapshot, step {step}; "
            f"snapshots hold no optimizer state, so the replay uses a fresh Adam") if step == steps[-1] else \
        f"loaded the persisted snapshot of step {step}"
    score = dict(manifest.get("score") or {})
    return LoadedGAN(G=G, D=D, source=f"ganrobust run snapshot (step {step})", latent_shape=infer_latent_shape(G),
                     score=score, bounds=(float(bounds[0]), float(bounds[1])), notes=[note],
                     train_config=manifest.get("train_config"), origins={key: "run manifest" for key in score},
                     gan_call=manifest.get("gan_call"))


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
    gan_call_record: dict[str, Any] | None = None

    single: Any = None  # the file, read once (a run's files are verified before they are read, below)
    if path is not None and generator is None and discriminator is None and Path(path).is_file() \
            and not (Path(path).parent / "manifest.json").exists():
        single = _read(Path(path), trust)
        if _one_network(single):  # one file per network: its partner is found by name
            files = partner_file(Path(path))
            if files is None:
                raise CheckpointError(
                    f"{path} holds one network's weights and no file next to it has the partner's name "
                    f"(G.pth/D.pth, netG_*/netD_*, generator_*/discriminator_*, model=G-*/model=D-*); "
                    f"pass --generator FILE --discriminator FILE")
            generator, discriminator = files
            notes.append(f"paired {Path(generator).name} with {Path(discriminator).name} by name")
            path = None
    if path is None:
        if generator is None or discriminator is None:
            raise CheckpointError("pass a checkpoint, or both --generator and --discriminator files")
        where = f"{generator} + {discriminator}"
        g_raw, d_raw = _read(Path(generator), trust), _read(Path(discriminator), trust)
        g_obj, g_opt, g_key = _network_entry(g_raw)
        d_obj, _, d_key = _network_entry(d_raw)
        source = "pair of files" + (f" (weights under {g_key!r})" if g_key else "")
        if g_opt is not None:
            opt_state = g_opt
            notes.append(f"G's optimizer state read from {Path(generator).name}")
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
        obj = single if single is not None else _read(p, trust)
        if isinstance(obj, dict) and obj.get("format") == "ganrobust.checkpoint/1":
            source = "ganrobust checkpoint"
            g_obj, d_obj = obj["G"], obj["D"]
            opt_state, opt_class = obj.get("optimizer_G"), obj.get("optimizer_G_class")
            arch_refs = obj.get("arch") or {}
            score = dict(obj.get("score") or {})
            origins = {key: "checkpoint" for key in score}
            bounds = tuple(obj.get("data_range") or bounds)  # type: ignore[assignment]
            gan_call_record = obj.get("gan_call")  # the adapter the run recorded (the manifest's, when beside it)
            if manifest is not None:  # the run it belongs to: what the run recorded wins
                recorded = dict(manifest.get("score") or {})
                score.update(recorded)
                origins.update({key: "run manifest" for key in recorded})
                train_config = manifest.get("train_config")
                gan_call_record = manifest.get("gan_call") or gan_call_record
        elif _stylegan_snapshot(obj):
            return _load_stylegan(obj, where, notes)
        elif isinstance(obj, dict):
            found = _find_pair(obj)
            if found is None:
                raise CheckpointError(
                    f"{where}: no generator/discriminator found; expected keys like G/D, generator/discriminator or "
                    f"netG/netD (a _state_dict suffix allowed, also nested under state_dict/model_state_dict/model/"
                    f"ema), or a Lightning state_dict with generator./discriminator. prefixes; found keys: "
                    f"{_found_keys(obj)}")
            g_obj, d_obj, how = found
            source = f"dict ({how})"
            opt_state = _g_optimizer(obj)
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
        inner, _, _ = _network_entry(obj)
        if inner is not obj:
            return materialise(inner, which)
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
            G_new = build(generator_class, generator_kwargs)
            D_new = build(discriminator_class, discriminator_kwargs)
        elif not arch and (recorded := recorded_pair(arch_refs, where)) is not None:
            G_new, D_new = recorded  # the classes and constructor arguments the run recorded
        elif arch in ("dcgan", None) and g_state is not None and "main.0.weight" in g_state:
            G_new, D_new = infer_dcgan(g_state, d_state or {}, sigmoid=d_output == "prob")
            notes.append("DCGAN hyperparameters inferred from tensor shapes")
        elif arch == "mlp" or (g_state is not None and any(k.startswith("net.") for k in g_state)
                               and unrecorded(arch_refs, where) is None):  # a recorded class: not guessed
            G_new, D_new = infer_mlp(g_state or {}, d_state or {})
            notes.append("MLP hyperparameters inferred from tensor shapes")
        else:
            raise CheckpointError(unrecorded(arch_refs, where) or f"{where}: cannot tell the architecture; pass "
                                  f"--arch dcgan|mlp or --generator-class pkg.mod:Class --discriminator-class pkg.mod:Class")
        if G is None:
            assert g_state is not None
            load_into(G_new, g_state, "generator", where)
            G = G_new
        if D is None:
            assert d_state is not None
            load_into(D_new, d_state, "discriminator", where)
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
    return LoadedGAN(G=G, D=D, source=source, latent_shape=tuple(latent_shape) if latent_shape else infer_latent_shape(G),
                     optimizer_g=opt_state if isinstance(opt_state, dict) else None, optimizer_g_class=opt_class,
                     score=score, bounds=(float(bounds[0]), float(bounds[1])), notes=notes,
                     train_config=train_config, origins=origins, gan_call=gan_call_record)


def _load_stylegan(obj: dict[str, Any], where: str, notes: list[str]) -> LoadedGAN:
    """G, D (and the augment pipe) of a StyleGAN2-ADA/StyleGAN3 snapshot.

    The replayed update is that of ``G``, the network the optimizer trains: its next step is what
    the audit measures. ``G_ema`` (the moving average used for sampling and FID) takes no gradient
    step of its own and is not used. Snapshots hold no optimizer state: the replay uses a fresh
    Adam (StyleGAN's own is Adam with lr 0.0025, betas (0, 0.99): pass --g-lr/--g-betas to match).
    """
    G, D = obj["G"], obj["D"]
    G.requires_grad_(True)  # snapshots are saved with requires_grad off; the replay steps G
    for name, module in (("G", G), ("D", D)):
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise CheckpointError(f"{where}: {name} weight {key!r} contains NaN or inf; audit an earlier snapshot")
    pipe = obj.get("augment_pipe") if isinstance(obj.get("augment_pipe"), nn.Module) else None
    p = getattr(pipe, "p", None)
    record = {"replayed": "G", "G_ema": "present, not used (it takes no gradient step of its own)"
              if isinstance(obj.get("G_ema"), nn.Module) else "absent",
              "augment_pipe": None if pipe is None else type(pipe).__name__,
              "augment_p": None if p is None else float(p), "augment": "not used: D scores un-augmented images",
              "c_dim": int(G.c_dim), "img_resolution": int(G.img_resolution), "img_channels": int(G.img_channels),
              "training_set_kwargs": obj.get("training_set_kwargs") if isinstance(obj.get("training_set_kwargs"), dict)
              else None}
    notes.append("StyleGAN snapshot: replaying the update of G (the trained network); G_ema is not used")
    notes.append("StyleGAN snapshots hold no optimizer state: the replay uses a fresh Adam (StyleGAN trains with "
                 "lr 0.0025, betas 0,0.99: pass --g-lr 0.0025 --g-betas 0,0.99 to match)")
    G.eval()
    D.eval()
    return LoadedGAN(G=G, D=D, source="StyleGAN2-ADA/StyleGAN3 snapshot", latent_shape=(int(G.z_dim),),
                     notes=notes, augment_pipe=pipe, stylegan=record)
