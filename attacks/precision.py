"""Precision of an attack's *search*: float32, or bfloat16/float16 autocast where the hardware
runs it natively. Verdicts never depend on it: every reported success, score and norm is
re-checked by the user's D in float32 (``attacks/base.py``), so a reduced-precision search
can be weaker, never wrong.

``auto`` picks bfloat16 only where it is native — a CPU with ``avx512_bf16`` or
``amx_bf16`` (and oneDNN dispatching at AVX512 or above), or a CUDA device that reports
bf16 support — and float32 everywhere else: on an AVX2-only CPU bf16 is emulated and
slower than float32. The decision is :func:`choose_precision`, a pure function of
:class:`HostFacts`, so every branch is testable on any host.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ganrobust.conventions import Precision


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


def precision_record(requested: "Precision | str", device: torch.device | str = "cpu") -> dict[str, object]:
    """What a run manifest, report.json and ``ganrobust env`` record: the request, what it
    resolves to on this host, and the facts that decided it."""
    return {"requested": Precision.coerce(requested).value,
            "used": resolve_precision(requested, device).value, "host": host_facts(device).to_dict()}


def resolve_precision(requested: "Precision | str", device: torch.device | str = "cpu") -> Precision:
    """:func:`choose_precision` with this host's facts for ``device``."""
    requested = Precision.coerce(requested)
    if requested is not Precision.AUTO:
        return requested
    return choose_precision(requested, host_facts(device))
