#!/usr/bin/env bash
# Trains the embedded default policy from scratch, the way the shipped one was trained:
# scripted-expert demonstrations in the sim -> both training stages -> asyncvla_ros/models/default/.
# CPU is enough (about 20 minutes on 2 cores). Extra arguments go to `asyncvla-ros train`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
DATA="${ASYNCVLA_DEMOS:-runs/default/demos}"
RUN="${ASYNCVLA_RUN:-runs/default/train}"
[[ -d "$DATA" ]] || asyncvla-ros demos --out "$DATA" --episodes 200 --seed 0 --image-size-px 112
asyncvla-ros train --dataset "$DATA" --out "$RUN" --image-size-px 112 --chunk-len 10 --history-len 20 \
  --steps 3000 --rater-steps 600 --batch-size 16 --warmup-steps 100 --checkpoint-every 1000 "$@"
rm -rf asyncvla_ros/models/default
mkdir -p asyncvla_ros/models
cp -r "$RUN/final" asyncvla_ros/models/default
echo "default policy written to asyncvla_ros/models/default ($(du -sh asyncvla_ros/models/default | cut -f1))"
