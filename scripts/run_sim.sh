#!/usr/bin/env bash
# The full node graph on the embedded simulated arm, from a fresh clone: sets up the environment
# (scripts/setup_env.sh), then starts every node (`asyncvla-ros launch`) and prints live control
# rate, latency and semantic age once a second. Stops on Ctrl-C, or after --duration seconds.
# Extra arguments go to `asyncvla-ros launch` (see --help: --colocated, --model DIR, --instruction).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
exec asyncvla-ros launch "$@"
