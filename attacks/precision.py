"""Precision of an attack's *search*: float32, or bfloat16/float16 autocast where the hardware
runs it natively. Verdicts never depend on it: every reported success, score and norm is
re-checked by the user's D in float32 (``attacks/base.py``), so a reduced-precision search
can be weaker, never wrong.

``auto`` is chosen by measurement, not by flags (issue 22): the host's flags do not tell
whether bf16 is faster (on one avx512_bf16 host bf16 PGD ran 1.75x float32, on another
0.89x). :func:`measured_precision` times one search step (forward and input gradient of the
margin) of the model being attacked, on its own input batch, in float32 and in bf16 (and fp16
on CUDA), once per host, model shape and torch version, and caches the timing in
``$GANROBUST_CACHE_DIR`` (default ``~/.cache/ganrobust``); :func:`choose_from_timing` picks a
reduced precision only where its step takes at most ``SPEEDUP_MARGIN`` of float32's. Where no
model is at hand (a manifest written before any attack), ``auto`` resolves to float32.

:func:`choose_precision` is the flags alone (:class:`HostFacts`), what ``ganrobust env``
reports as "native".
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TYPE_CHECKING

import torch

from ganrobust.conventions import Precision

if TYPE_CHECKING:
    from ganrobust.scorer import Scorer

#: a reduced precision is chosen only where its search step takes at most this share of
#: float32's (at least ~1.18x faster): below that, timing noise could flip the choice
SPEEDUP_MARGIN = 0.85
CACHE_ENV = "GANROBUST_CACHE_DIR"
TIMING_REPEATS = 5


#: CPU flags (``/proc/cpuinfo``) under which oneDNN runs bf16 / fp16 convolutions natively.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
FP16_FLAGS = frozenset({"avx512_fp16", "amx_fp16"})
#: ``torch.backends.cpu.get_cpu_capability()`` values at which the flags above are used.
NATIVE_CAPABILITIES = frozenset({"AVX512", "AVX512_BF16", "AMX", "AVX512_FP16"})


@dataclass(frozen=True)
class HostFacts:
    """What decides whether a reduced precision is native on the device attacks run on."""

    device_type: str = "cpu"            # "cpu" or "cuda"
    cpu_capability: str = "DEFAULT"     # torch.backends.cpu.get_cpu_capability()
    cpu_flags: frozenset[str] = frozenset()  # the bf16/fp16 flags present in /proc/cpuinfo
    cuda_bf16: bool = False             # torch.cuda.is_bf16_supported()
    cuda_fp16: bool = False             # compute capability >= 7.0 (tensor cores)

    def to_dict(self) -> dict[str, object]:
        return {"device_type": self.device_type, "cpu_capability": self.cpu_capability,
                "cpu_flags": sorted(self.cpu_flags), "cuda_bf16": self.cuda_bf16, "cuda_fp16": self.cuda_fp16}


def native_precisions(facts: HostFacts) -> tuple[Precision, ...]:
    """Precisions this host runs natively (fp32 always)."""
    out = [Precision.FP32]
    if facts.device_type == "cuda":
        if facts.cuda_bf16:
            out.append(Precision.BF16)
        if facts.cuda_fp16:
            out.append(Precision.FP16)
        return tuple(out)
    if facts.cpu_capability in NATIVE_CAPABILITIES:
        if facts.cpu_flags & BF16_FLAGS:
            out.append(Precision.BF16)
        if facts.cpu_flags & FP16_FLAGS:
            out.append(Precision.FP16)
    return tuple(out)


def choose_precision(requested: "Precision | str", facts: HostFacts) -> Precision:
    """Resolve ``auto`` to bf16 where native, else fp32; an explicit request is kept as asked."""
    requested = Precision.coerce(requested)
    if requested is not Precision.AUTO:
        return requested
    return Precision.BF16 if Precision.BF16 in native_precisions(facts) else Precision.FP32


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The bf16/fp16 flags of this CPU (empty where /proc/cpuinfo is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split()) & (BF16_FLAGS | FP16_FLAGS)
    return frozenset()


def host_facts(device: torch.device | str = "cpu") -> HostFacts:
    """The facts of this host for attacks on ``device``."""
    device = torch.device(device)
    capability = torch.backends.cpu.get_cpu_capability()
    if device.type == "cuda":
        major = torch.cuda.get_device_capability(device)[0]
        return HostFacts("cuda", capability, cpu_flags(), bool(torch.cuda.is_bf16_supported()), major >= 7)
    return HostFacts(device.type, capability, cpu_flags())


def precision_record(requested: "Precision | str", device: torch.device | str = "cpu", *,
                     scorer: "Scorer | None" = None, x: torch.Tensor | None = None) -> dict[str, object]:
    """What a run manifest, report.json and ``ganrobust env`` record: the request, what it
    resolves to on this host, the facts, and for ``auto`` with a model the timing that decided it."""
    out: dict[str, object] = {"requested": Precision.coerce(requested).value,
                              "used": resolve_precision(requested, device, scorer=scorer, x=x).value,
                              "host": host_facts(device).to_dict()}
    if Precision.coerce(requested) is Precision.AUTO:
        out["timing"] = None if scorer is None or x is None else measured_precision(scorer, x)[1]
    return out


def resolve_precision(requested: "Precision | str", device: torch.device | str = "cpu", *,
                      scorer: "Scorer | None" = None, x: torch.Tensor | None = None) -> Precision:
    """An explicit precision as asked; ``auto`` by the (cached) timing of ``scorer`` on ``x``,
    float32 where no model is given."""
    requested = Precision.coerce(requested)
    if requested is not Precision.AUTO:
        return requested
    if scorer is None or x is None:
        return Precision.FP32
    return measured_precision(scorer, x)[0]


def choose_from_timing(seconds: dict[str, float], margin: float = SPEEDUP_MARGIN) -> Precision:
    """The fastest precision whose step takes at most ``margin`` of float32's; float32 otherwise.
    A pure function of the timing, so a cached timing always gives the same choice."""
    best = Precision.FP32
    for name in ("bf16", "fp16"):
        t = seconds.get(name)
        if t is not None and t <= margin * seconds["fp32"] and t < seconds.get(best.value, math.inf):
            best = Precision(name)
    return best


def cache_dir() -> Path:
    """``$GANROBUST_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganrobust``, else ``~/.cache/ganrobust``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganrobust"


def timing_key(scorer: "Scorer", x: torch.Tensor) -> str:
    """Host (name, CPU model, capability, flags; CUDA device name), torch version and model shape
    (class, parameter shapes and dtypes, batch shape): one timing per combination."""
    device = x.device
    host = [platform.node(), _cpu_model(), torch.backends.cpu.get_cpu_capability(), sorted(cpu_flags())]
    if device.type == "cuda":
        host.append(torch.cuda.get_device_name(device))
    model = [type(scorer.module).__qualname__, scorer.bn.value,
             [(n, list(p.shape), str(p.dtype)) for n, p in scorer.module.named_parameters()], list(x.shape)]
    blob = json.dumps([host, torch.__version__, device.type, model], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def candidates(device: torch.device) -> tuple[Precision, ...]:
    """What ``auto`` times: bf16 on CPU, bf16 and fp16 on CUDA (float32 is the reference)."""
    return (Precision.BF16, Precision.FP16) if device.type == "cuda" else (Precision.BF16,)


def time_precisions(scorer: "Scorer", x: torch.Tensor, repeats: int = TIMING_REPEATS) -> dict[str, float]:
    """Median seconds of one search step (forward, input gradient of the summed score) of the
    frozen search copy on ``x``, per precision. Parameters, modes and the global RNG untouched."""
    from ganrobust.module_state import preserved_rng

    out: dict[str, float] = {}
    with preserved_rng(x.device):
        for precision in (Precision.FP32, *candidates(x.device)):
            work, xw = scorer.for_attack(x.detach(), precision=precision)
            times = []
            with work.session():
                for i in range(repeats + 1):  # the first call warms up
                    if x.device.type == "cuda":
                        torch.cuda.synchronize(x.device)
                    started = time.perf_counter()
                    with torch.enable_grad():
                        xa = xw.detach().requires_grad_(True)
                        torch.autograd.grad(work.forward(xa).sum(), xa)
                    if x.device.type == "cuda":
                        torch.cuda.synchronize(x.device)
                    if i:
                        times.append(time.perf_counter() - started)
            out[precision.value] = statistics.median(times)
    return out


def measured_precision(scorer: "Scorer", x: torch.Tensor) -> tuple[Precision, dict[str, Any]]:
    """``auto`` for this model on this host: the cached timing (timed once and stored when missing)
    and the choice it gives. Returns (choice, record) with the record as report.json stores it."""
    key = timing_key(scorer, x)
    path = cache_dir() / "precision.json"
    entry = _read_cache(path).get(key)
    if entry is None:
        entry = {"seconds": time_precisions(scorer, x), "torch": torch.__version__,
                 "cpu_capability": torch.backends.cpu.get_cpu_capability(), "device": x.device.type,
                 "batch_shape": list(x.shape), "model": type(scorer.module).__qualname__}
        _write_cache(path, key, entry)
    choice = choose_from_timing(entry["seconds"])
    return choice, {**entry, "key": key, "margin": SPEEDUP_MARGIN, "chosen": choice.value, "cache": str(path)}


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Merge one entry into the cache (temp file, then rename); an unwritable cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[key] = entry
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
