#!/usr/bin/env bash
# Trains the candidate recipe for the embedded default policy from scratch, on 2 CPU cores: 400
# scripted-expert episodes run in the sim (seeds 0-399, in memory, the same demonstrations
# `asyncvla-ros demos --seed 0 --start-noise 0.15` records) -> stage 1 (unified SFM/AFM, history 20,
# time misalignment, the two auxiliary scene-state losses) -> stage 2 (confidence rater).
#
#   bash scripts/train_default_policy.sh                      # writes runs/default/final
#   ASYNCVLA_INSTALL=1 bash scripts/train_default_policy.sh   # ... and installs it as the bundled default
#   ASYNCVLA_RUN=runs/naive bash scripts/train_default_policy.sh --history-len 0 --no-time-misalignment
#       (the eval's "naive cache reuse" baseline)
#
# The bundled default (asyncvla_ros/models/default/) is this recipe's output (runs/deep4, 2026-12-02:
# 8/24 on seeds 2000-2023, against 1/24 for the same recipe with 2 decoder layers). Choices that
# differ from the paper, for a backbone trained from random weights on 400 episodes
# (the paper fine-tunes a pretrained 3B VLM): the conv image encoder (7 x 7 tokens per 112 px camera)
# with 4 px random shifts; every group at lr 1e-3; state and history noise of 0.02 rad and
# whole-history dropout (0.5) so that the exact start pose and history cannot identify an episode;
# demonstrations from start poses spread by 0.15 rad (the evaluation's spread is 0.02); 20 % extra
# all-masked (SFM) samples; and two auxiliary losses that regress the cube pose and the instructed
# area, from the backbone's last prefix token and from keypoints of the conv encoder; 4 decoder layers
# (2 ignored which area the instruction names). About 40 min on 2 otherwise idle cores (6 for the
# demonstrations, 33 for 16000 steps at ~8/s, 1 for the rater).
# Extra arguments go to `asyncvla-ros train` and override these.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
RUN="${ASYNCVLA_RUN:-runs/default}"
asyncvla-ros train --sim-episodes 400 --sim-seed 0 --sim-workers 2 --sim-start-noise 0.15 --out "$RUN" \
  --image-size-px 112 --vision-encoder conv --image-shift-px 4 --chunk-len 10 --history-len 20 --layers 4 \
  --steps 16000 --rater-steps 400 --batch-size 16 --warmup-steps 300 --checkpoint-every 4000 --log-every 100 \
  --lr-vision 1e-3 --lr-language-model 1e-3 --lr-action-expert 1e-3 --lr-rater 1e-3 \
  --state-noise-rad 0.02 --history-noise-rad 0.02 --history-dropout 0.5 --sfm-fraction 0.2 \
  --env-state-loss-weight 1 --encoder-env-state-loss-weight 1 "$@"
if [[ "${ASYNCVLA_INSTALL:-0}" == 1 ]]; then
  rm -rf asyncvla_ros/models/default
  mkdir -p asyncvla_ros/models
  cp -r "$RUN/final" asyncvla_ros/models/default
  echo "default policy written to asyncvla_ros/models/default ($(du -sh asyncvla_ros/models/default | cut -f1))"
fi
