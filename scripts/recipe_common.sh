# Sourced by scripts/train_default_policy.sh and scripts/train_budget_policy.sh: the set-up both do
# (the environment, the colcon workspace, the repository as working directory) and the parts of the
# recipe they share (train_default_policy.sh says why each is there).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
# Every run: 400 sim expert episodes from a 0.15 rad start-pose spread, 4 px shifts, the regularisers
# and the two scene-state losses.
RECIPE=(--sim-episodes 400 --sim-workers 2 --sim-start-noise 0.15 --image-shift-px 4 --warmup-steps 300 --lr-rater 1e-3
  --state-noise-rad 0.02 --history-noise-rad 0.02 --history-dropout 0.5 --sfm-fraction 0.2
  --env-state-loss-weight 1 --encoder-env-state-loss-weight 1)
# The new policy of the first run, and the learning rates of the first run and of the continuations.
NEW_POLICY=(--image-size-px 112 --vision-encoder conv --chunk-len 10 --history-len 20 --layers 4)
BASE_LR=(--lr-vision 1e-3 --lr-language-model 1e-3 --lr-action-expert 1e-3)
CONTINUATION_LR=(--lr-vision 5e-4 --lr-language-model 5e-4 --lr-action-expert 5e-4)
# ASYNCVLA_INSTALL=1: the trained policy in $1 replaces the bundled default (asyncvla_ros/models/default).
install_if_asked() {
  if [[ "${ASYNCVLA_INSTALL:-0}" == 1 ]]; then
    rm -rf asyncvla_ros/models/default
    mkdir -p asyncvla_ros/models
    cp -r "$1" asyncvla_ros/models/default
    echo "default policy written to asyncvla_ros/models/default ($(du -sh asyncvla_ros/models/default | cut -f1))"
  fi
}
