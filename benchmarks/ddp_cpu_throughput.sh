#!/usr/bin/env bash
# Training throughput of the budget recipe on this machine's cores: one process with 2 threads against
# two data-parallel processes (torchrun, gloo) with 1 thread each, at the same global batch (8), 600
# steps each on 16 sim demonstrations. Prints the median steps/s each logged and the wall time of each
# whole command. A benchmark, not a test: run it on otherwise idle cores.
#
#   bash benchmarks/ddp_cpu_throughput.sh [OUT_DIR]      # default /tmp/ddp_cpu_throughput
set -euo pipefail
# shellcheck source=scripts/recipe_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/recipe_common.sh"
OUT="${1:-/tmp/ddp_cpu_throughput}"
rm -rf "$OUT/one" "$OUT/two" && mkdir -p "$OUT"
FLAGS=("${RECIPE[@]}" --sim-episodes 16 --batch-size 8 --steps 600 --rater-steps 0 --log-every 20 --checkpoint-every 600
  "${NEW_POLICY[@]}" "${BASE_LR[@]}" --action-env-state-loss-weight 1 --env-state-dims 7 --action-env-state-dims 7)
t0=$SECONDS
OMP_NUM_THREADS=2 asyncvla-ros train "${FLAGS[@]}" --out "$OUT/one" >"$OUT/one.log" 2>&1
t1=$SECONDS
OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 -m asyncvla_ros.cli train "${FLAGS[@]}" --out "$OUT/two" >"$OUT/two.log" 2>&1
t2=$SECONDS
python - "$OUT" "$((t1 - t0))" "$((t2 - t1))" <<'PY'
import json, statistics, sys
out, walls = sys.argv[1], sys.argv[2:]
for name, wall in zip(("one", "two"), walls):
    rates = [m["stage1/steps_per_s"] for m in map(json.loads, open(f"{out}/{name}/metrics.jsonl"))
             if "stage1/steps_per_s" in m and m["step"] > 100]  # past the warm-up
    label = "1 process, 2 threads" if name == "one" else "2 processes, 1 thread each"
    print(f"{label}: median {statistics.median(rates):.2f} steps/s over {len(rates)} logs, {wall} s in all")
PY
