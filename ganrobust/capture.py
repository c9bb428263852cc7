"""What a training loop's own forwards say about G's next optimizer step: the latents ``(z, c)``
the step used, seen where they enter G, and the phase the step belongs to.

* **Where latents enter.** The adapter names the modules (:meth:`GanCall.latent_entries`: G, and
  for StyleGAN ``G.mapping``, which StyleGAN's loss calls instead of ``G``; the first named wins
  when both ran) and maps their forward arguments back to ``(z, c)`` (:meth:`GanCall.latents_of`:
  BigGAN's ``G(z, G.shared(y))`` gives back ``y``). The step's latents are those of the *first*
  such call since the last optimizer step (StyleGAN's style mixing calls the mapping a second time
  with fresh latents), or, when G was not called since (pytorch/examples: ``fake = G(z)`` before
  D's step, reused for G's), the last call seen.
* **Phases.** A G step whose loss went through D (D or one of its layers ran with gradients
  since the last optimizer step) is ``Gmain``; one that did not is ``Greg``, a regulariser step
  (StyleGAN2-ADA's lazy path-length penalty steps G's optimizer a second time, every 4 steps).

Nothing is attached to the user's modules: one process-wide forward hook (``torch.nn.modules.
module.register_module_forward_hook``) looks at every module call and keeps references to the
entry module's arguments only, so the user's G and D deep-copy and pickle exactly as without
the hook (StyleGAN's loop copies G for ``G_ema`` and pickles copies into its snapshots). It costs
one Python call per module call while a watch is open: 2-3 µs more per call on a loaded 2-core
CPU, where a bare module call takes 1.2 µs.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

#: the phase of a G step whose loss went through D, and of one whose loss did not
MAIN, REGULARISATION = "Gmain", "Greg"


class ForwardCapture:
    """Watches the loop's forwards for one G/D pair (:class:`ganrobust.watching.observer.LoopObserver` owns one)."""

    def __init__(self, G: nn.Module, D: nn.Module, call: Any) -> None:
        self.call = call
        self._G = weakref.ref(G)
        self._entries = [weakref.ref(m) for m in call.latent_entries(G)]
        self._d_modules = {id(m) for m in D.modules()}
        # per entry module: the arguments of its first call since the last optimizer step, and of its last call
        self._first: list[tuple[tuple[Any, ...], dict[str, Any]] | None] = [None] * len(self._entries)
        self._last: list[tuple[tuple[Any, ...], dict[str, Any]] | None] = [None] * len(self._entries)
        self._through_d = False
        self._handle = register_module_forward_hook(self._seen, with_kwargs=True)

    def _seen(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], _out: Any) -> None:
        for i, entry in enumerate(self._entries):
            if module is entry():
                self._last[i] = (args, kwargs)  # references only: cloned when a measured step takes them
                if self._first[i] is None:
                    self._first[i] = self._last[i]
                return
        if id(module) in self._d_modules and torch.is_grad_enabled():
            self._through_d = True

    def stepped(self) -> None:
        """An optimizer step of G or D happened: later calls belong to the next step."""
        self._first = [None] * len(self._entries)
        self._through_d = False

    @property
    def phase(self) -> str:
        """The phase of the G step about to be taken."""
        return MAIN if self._through_d else REGULARISATION

    def latents(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(z, c)`` of the G step about to be taken (``c`` None when not seen); None when no
        latent batch was seen. Raises what the adapter's mapping raises."""
        seen = next((s for s in self._first + self._last if s is not None), None)
        G = self._G()
        if seen is None or G is None:
            return None
        return self.call.latents_of(G, *seen)

    def remove(self) -> None:
        self._handle.remove()
        self._first = [None] * len(self._entries)
        self._last = [None] * len(self._entries)
