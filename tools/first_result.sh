#!/usr/bin/env bash
# The first result (issue 4): standard D vs PGD-trained D, same data, seed and steps, with the
# hook on; then `ganrobust compare`. Regenerates reports/shapes-standard-vs-pgd and
# reports/digits-standard-vs-pgd. About 75 minutes on a 2-core CPU; run after tools/bootstrap.sh.
#
# One thread per process: CPU float reductions depend on the thread count, so the committed
# numbers are reproduced bit for bit only with OMP_NUM_THREADS=1 (any thread count gives the
# same experiment, not the same bits).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
RUNS=${RUNS:-runs}
for spec in shapes:3000 digits:2000; do
  data=${spec%%:*}
  steps=${spec##*:}
  for method in standard pgd; do
    if [ ! -f "$RUNS/$data-$method/checkpoint.pt" ]; then
      rm -rf "$RUNS/$data-$method"
      .venv/bin/ganrobust train --data "$data" --steps "$steps" --seed 0 --d-training "$method" --out "$RUNS/$data-$method"
    fi
  done
  .venv/bin/ganrobust compare "$RUNS/$data-standard" "$RUNS/$data-pgd" --out "reports/$data-standard-vs-pgd"
done
