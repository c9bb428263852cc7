"""The one loading step for the GAN checkpoints people actually have: read the user's files once, let
the first family of :data:`ganrobust.families.FAMILIES` that recognises them build the networks,
and return a :class:`LoadedGAN` (as StyleGAN2-ADA's ``legacy.load_network_pkl`` is one entry point).

What each codebase's files look like, how its networks are built, its adapter and its own update
live in its family's module (:mod:`ganrobust.families`): ganrobust's ``checkpoint.pt`` and run
directories; StyleGAN2-ADA/StyleGAN3 ``network-snapshot-*.pkl``; StudioGAN, BigGAN-PyTorch,
torch-mimicry, PyTorch-GAN and pytorch/examples file pairs; any dict of G and D state dicts
(:mod:`ganrobust.families.layouts`: usual key pairs, Lightning prefixes, ``_state_dict`` suffixes,
nestings) and any pair of network files matched by name; TorchScript archives.

Loading is ``weights_only=True`` unless the user passes ``trust=True`` (the CLI's
``--trust-checkpoint``); plain pickles (StyleGAN snapshots) need it. Every problem raises
:class:`CheckpointError`: one line saying what is wrong and how to fix it.

Files of a ganrobust run (``checkpoint.pt``, ``snapshots/*.safetensors``) are checked against the
SHA-256 the run's manifest recorded before they are read (``verify=False``, the CLI's
``--no-verify``, skips that). A checkpoint inside a run directory also brings what the run's
manifest recorded: the score convention and, for ``ganrobust train`` runs, the training config.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganrobust import families
from ganrobust.families.base import Found, LoadedGAN, Options
from ganrobust.families.layouts import check_finite, one_network, partner_file
from ganrobust.runs.architectures import infer_latent_shape, load_into
from ganrobust.runs.store import (CHECKPOINT, MANIFEST, CheckpointError, load_snapshot, persisted_steps,
                                  read_manifest, read_sibling_manifest, verify_run_file)
from ganrobust.errors import marked, param

__all__ = ["CheckpointError", "LoadedGAN", "load_gan", "load_run_snapshot", "partner_file", "run_models"]


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
                f"unpickling can run arbitrary code. If you trust its source, pass {param('trust')}") from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {_first_line(err)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, ImportError,
            ModuleNotFoundError, TypeError, KeyError, IndexError, UnicodeDecodeError, MemoryError, OverflowError) as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or not a checkpoint?): "
                              f"{_first_line(err)}") from None


def _read_pickle(path: Path, trust: bool) -> Any:
    """A plain pickle (StyleGAN2-ADA/StyleGAN3 ``network-snapshot-*.pkl``): only when trusted."""
    if not trust:
        raise CheckpointError(f"{path} is a Python pickle (StyleGAN2-ADA/StyleGAN3 snapshots are): unpickling runs code "
                              f"from the file. If you trust its source, pass {param('trust')}")
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



def run_models(run_dir: Path) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Fresh G and D built from a run's manifest (by the family it names, else from the architecture
    references the hook wrote), and the manifest itself."""
    try:
        manifest = read_manifest(run_dir)
    except ValueError as err:
        raise CheckpointError(f"{marked(err)}; and there is no checkpoint.pt") from None
    try:
        G, D = families.rebuild(manifest)
    except CheckpointError as err:
        raise CheckpointError(f"{run_dir}: {marked(err)}") from None
    return G, D, manifest


def load_run_snapshot(run_dir: Path, step: int | None = None, *, verify: bool = True) -> LoadedGAN:
    """G (after its update) and D of a persisted snapshot — the last one unless ``step`` is given.

    This is how a run that never wrote ``checkpoint.pt`` (killed, or still running) is audited.
    """
    G, D, manifest = run_models(run_dir)
    steps = persisted_steps(run_dir)
    if not steps:
        raise CheckpointError(f"{run_dir} has no checkpoint.pt and no persisted snapshot yet: the run stopped before "
                              f"its first snapshot ({param('snapshot_every')})")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise CheckpointError(f"{run_dir} has no persisted snapshot of step {step}; available: {steps[:10]}")
    where = f"{run_dir} snapshot {step}"
    for module, kind, which in ((G, "G_after", "generator"), (D, "D", "discriminator")):
        state = load_snapshot(run_dir, step, kind, verify=verify)
        check_finite(state, which, where)
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
    config: str | None = None,
) -> LoadedGAN:
    """Load G and D from one checkpoint (or run directory) or from a pair of files, through the
    family that recognises them. ``config`` is a family's own config file (StudioGAN's YAML).

    ``verify`` checks a run's files against the SHA-256 its manifest recorded (CheckpointError on
    a mismatch)."""
    options = Options(arch=arch, generator_class=generator_class, generator_kwargs=generator_kwargs,
                      discriminator_class=discriminator_class, discriminator_kwargs=discriminator_kwargs,
                      d_output=d_output, trust=trust, latent_shape=tuple(latent_shape) if latent_shape else None,
                      verify=verify, config=config)
    found = _found(path, generator, discriminator, options)
    if isinstance(found, LoadedGAN):  # a run directory without checkpoint.pt: its last snapshot
        return found
    family = families.recognise(found)
    loaded = family.load(found)
    loaded.family = family.name
    loaded.update = loaded.update or family.update
    if options.d_output is not None:
        loaded.score["kind"] = options.d_output
        if loaded.origins.get("kind") != "default":  # the pytorch/examples assumption stays a default
            loaded.origins["kind"] = "option"
    loaded.G.eval()
    loaded.D.eval()
    return loaded


def _found(path: str | Path | None, generator: str | Path | None, discriminator: str | Path | None,
           options: Options) -> Found | LoadedGAN:
    """The user's files, read once: a pair of network files (given, or one of them and its partner
    found by name), or a checkpoint (a run's checkpoint.pt verified before it is read)."""
    def read(p: Path) -> Any:
        return _read(p, options.trust)

    if path is not None and generator is None and discriminator is None and Path(path).is_file() \
            and not (Path(path).parent / MANIFEST).exists():
        obj = read(Path(path))
        if not one_network(obj):
            return Found(options, read, path=Path(path), obj=obj)
        files = partner_file(Path(path))  # one file per network: its partner is found by name
        if files is None:
            raise CheckpointError(
                f"{path} holds one network's weights and no file next to it has the partner's name "
                f"(G.pth/D.pth, netG_*/netD_*, generator_*/discriminator_*, model=G-*/model=D-*); "
                f"pass {param('generator')} FILE {param('discriminator')} FILE")
        raws = (obj, read(files[1])) if files[0] == Path(path) else (read(files[0]), obj)
        return Found(options, read, generator=files[0], discriminator=files[1], g_raw=raws[0], d_raw=raws[1],
                     notes=[f"paired {files[0].name} with {files[1].name} by name"])
    if path is None:
        if generator is None or discriminator is None:
            raise CheckpointError(f"pass a checkpoint, or both {param('generator')} and {param('discriminator')} files")
        g, d = Path(generator), Path(discriminator)
        return Found(options, read, generator=g, discriminator=d, g_raw=read(g), d_raw=read(d))
    p = Path(path)
    if p.is_dir():
        if not (p / CHECKPOINT).exists():
            return load_run_snapshot(p, verify=options.verify)
        p = p / CHECKPOINT
    manifest = read_sibling_manifest(p) if p.exists() and not p.is_dir() else None
    if manifest is not None:
        verify_run_file(p.parent, p.name, options.verify)  # before a single byte of it is unpickled
    return Found(options, read, path=p, obj=read(p), manifest=manifest)
