#!/usr/bin/env bash
# The first result (issue 4, issue 10): standard D vs PGD-trained D on digits, three seeds per arm,
# same data and steps, with the hook on; then one `ganrobust compare` with the two arms, which
# reports every run's within-run numbers and, per arm, means over seeds with Student-t intervals
# and Welch differences between arms. Regenerates reports/digits-standard-vs-pgd (and, with
# SHAPES=1, reports/shapes-standard-vs-pgd). Run after tools/bootstrap.sh.
#
#   STEPS=1000 SEEDS="0 1 2" tools/first_result.sh      # the defaults
#   SHAPES=1 SHAPES_STEPS=3000 tools/first_result.sh     # also the shapes comparison
#
# Runs are named $RUNS/<data>-<method>-s<seed>; a run with a checkpoint is reused, a partial one
# is trained again. One thread per process: CPU float reductions depend on the thread count, so
# the committed numbers are reproduced bit for bit only with OMP_NUM_THREADS=1 (any thread count
# gives the same experiment, not the same bits).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
RUNS=${RUNS:-runs}
STEPS=${STEPS:-1000}
SEEDS=${SEEDS:-0 1 2}
SHAPES=${SHAPES:-0}
SHAPES_STEPS=${SHAPES_STEPS:-$STEPS}

specs="digits:$STEPS"
if [ "$SHAPES" = 1 ]; then
  specs="$specs shapes:$SHAPES_STEPS"
fi
for spec in $specs; do
  data=${spec%%:*}
  steps=${spec##*:}
  arms=()
  for method in standard pgd; do
    members=()
    for seed in $SEEDS; do
      run="$RUNS/$data-$method-s$seed"
      if [ ! -f "$run/checkpoint.pt" ]; then
        rm -rf "$run"
        .venv/bin/ganrobust train --data "$data" --steps "$steps" --seed "$seed" --d-training "$method" --out "$run"
      fi
      members+=("$run")
    done
    arms+=(--arm "$method=$(IFS=,; echo "${members[*]}")")
  done
  .venv/bin/ganrobust compare "${arms[@]}" --out "reports/$data-standard-vs-pgd"
done
