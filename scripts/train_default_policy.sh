#!/usr/bin/env bash
# Trains the embedded default policy from scratch, on 2 CPU cores: 400 scripted-expert episodes run
# in the sim (seeds 0-399, in memory, the same demonstrations `asyncvla-ros demos --seed 0
# --start-noise 0.15` records) -> stage 1 (unified SFM/AFM, history 20, time misalignment, the two
# auxiliary scene-state losses) -> stage 2 (confidence rater); then a second run of both stages from
# that policy on 400 new episodes (seeds 400-799, 12000 steps).
#
#   bash scripts/train_default_policy.sh                      # writes runs/default/final
#   ASYNCVLA_INSTALL=1 bash scripts/train_default_policy.sh   # ... and installs it as the bundled default
#   ASYNCVLA_RUN=runs/naive bash scripts/train_default_policy.sh --history-len 0 --no-time-misalignment
#       (the eval's "naive cache reuse" baseline)
#
# The second run starts from the first's checkpoint ($RUN/base/final) at half the learning rate, with the
# auxiliary heads re-initialised and the normalisation statistics of its own data (--renormalize, as the
# bundled default was trained; both data sets are the same expert's, so the statistics differ little). The bundled default (asyncvla_ros/models/default/) is this recipe's
# output (runs/cont1, 2026-12-03: 12/24 on seeds 2000-2023, against 8/24 for the first run alone).
# Choices that differ from the paper, for a backbone trained from random weights on 800 episodes
# (the paper fine-tunes a pretrained 3B VLM): the conv image encoder (7 x 7 tokens per 112 px camera)
# with 4 px random shifts; state and history noise of 0.02 rad and
# whole-history dropout (0.5) so that the exact start pose and history cannot identify an episode;
# demonstrations from start poses spread by 0.15 rad (the evaluation's spread is 0.02); 20 % extra
# all-masked (SFM) samples; and two auxiliary losses that regress the cube pose and the instructed
# area, from the backbone's last prefix token and from keypoints of the conv encoder; 4 decoder layers
# (2 ignored which area the instruction names). About 85 min on 2 otherwise idle cores (40 for the
# base: 6 for its demonstrations, 33 for 16000 steps at ~8/s, 1 for the rater; 44 for the
# continuation: 6 for its demonstrations, 37 for 12000 steps at ~5.5/s, 1 for the rater).
# Extra arguments go to both `asyncvla-ros train` runs and override these.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
RUN="${ASYNCVLA_RUN:-runs/default}"
COMMON=(--sim-episodes 400 --sim-workers 2 --sim-start-noise 0.15 --image-shift-px 4 --rater-steps 400 --batch-size 16
  --warmup-steps 300 --checkpoint-every 4000 --log-every 100 --lr-rater 1e-3
  --state-noise-rad 0.02 --history-noise-rad 0.02 --history-dropout 0.5 --sfm-fraction 0.2
  --env-state-loss-weight 1 --encoder-env-state-loss-weight 1)
asyncvla-ros train "${COMMON[@]}" --sim-seed 0 --out "$RUN/base" \
  --image-size-px 112 --vision-encoder conv --chunk-len 10 --history-len 20 --layers 4 --steps 16000 \
  --lr-vision 1e-3 --lr-language-model 1e-3 --lr-action-expert 1e-3 "$@"
asyncvla-ros train "${COMMON[@]}" --sim-seed 400 --out "$RUN" --init "$RUN/base/final" --renormalize --steps 12000 \
  --lr-vision 5e-4 --lr-language-model 5e-4 --lr-action-expert 5e-4 "$@"
if [[ "${ASYNCVLA_INSTALL:-0}" == 1 ]]; then
  rm -rf asyncvla_ros/models/default
  mkdir -p asyncvla_ros/models
  cp -r "$RUN/final" asyncvla_ros/models/default
  echo "default policy written to asyncvla_ros/models/default ($(du -sh asyncvla_ros/models/default | cut -f1))"
fi
