"""The run store: the only code that reads or writes a run directory, its paths included.

    models + data -> snapshots -> measurement -> records -> **run store** -> report

``store`` writes and reads run directories (manifest, ``steps.jsonl`` records, per-sample
arrays, probes, snapshots, the checkpoint, SHA-256 integrity) and the resumable per-snapshot
results of an audit; ``checkpoints`` loads (G, D, optimizer state) from the checkpoint layouts
people keep; ``architectures`` rebuilds the built-in models from tensor shapes; ``settings``
resolves how an audit scores and replays from what a run recorded.
"""

from ganrobust.runs.store import (CHECKPOINT, MANIFEST, RUN_SCHEMA, SNAPSHOT_KINDS, Run, RunWriter, file_matches,
                                  read_manifest, read_run, sha256_of, snapshot_file, to_jsonable)

__all__ = ["CHECKPOINT", "MANIFEST", "RUN_SCHEMA", "SNAPSHOT_KINDS", "Run", "RunWriter", "file_matches",
           "read_manifest", "read_run", "sha256_of", "snapshot_file", "to_jsonable"]
