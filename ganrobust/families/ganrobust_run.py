"""ganrobust's own files: ``checkpoint.pt`` written by :func:`ganrobust.watch` or ``ganrobust train``
(format ``ganrobust.checkpoint/1``: G's and D's weights, G's optimizer state and class, the
architectures' import paths and constructor arguments, the score convention, the data range),
with what its run's manifest recorded (score convention, train config, the GAN adapter)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ganrobust.families.base import Family, Found, LoadedGAN, Update
from ganrobust.families.generic import load_networks
from ganrobust.runs.architectures import recorded_pair, unrecorded
from ganrobust.runs.store import CheckpointError

FORMAT = "ganrobust.checkpoint/1"


class GanrobustRun(Family):
    name = "ganrobust"
    title = "a ganrobust run (checkpoint.pt, manifest.json)"
    update = Update()  # the checkpoint holds G's optimizer; a `ganrobust train` run records its loss

    def recognises(self, found: Found) -> bool:
        return isinstance(found.obj, dict) and found.obj.get("format") == FORMAT

    def load(self, found: Found) -> LoadedGAN:
        obj, manifest = found.obj, found.manifest
        score = dict(obj.get("score") or {})
        origins = {key: "checkpoint" for key in score}
        extra: dict[str, Any] = {"gan_call": obj.get("gan_call")}  # the adapter the run recorded
        if manifest is not None:  # the run it belongs to: what the run recorded wins
            recorded = dict(manifest.get("score") or {})
            score.update(recorded)
            origins.update({key: "run manifest" for key in recorded})
            extra = {"train_config": manifest.get("train_config"),
                     "gan_call": manifest.get("gan_call") or obj.get("gan_call")}
        bounds = obj.get("data_range") or (-1.0, 1.0)
        return load_networks(found, obj["G"], obj["D"], source="ganrobust checkpoint", arch_refs=obj.get("arch") or {},
                             optimizer_g=obj.get("optimizer_G"), optimizer_g_class=obj.get("optimizer_G_class"),
                             score=score, origins=origins, bounds=(float(bounds[0]), float(bounds[1])), **extra)

    def rebuild(self, manifest: dict[str, Any]) -> tuple[nn.Module, nn.Module] | None:
        models = manifest.get("models") or {}
        pair = recorded_pair(models, "the run")
        if pair is None:
            raise CheckpointError(unrecorded(models, "the run") or "the manifest does not record how to build G and D, "
                                  "and there is no checkpoint.pt")
        return pair


FAMILY = GanrobustRun()
