#!/usr/bin/env bash
# Every test, from a fresh clone: sets up the environment (scripts/setup_env.sh: system packages,
# venv, colcon build; quick when already done), then runs pytest on test/ with the install space
# sourced, so node tests start the nodes built by colcon. Extra arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "${ASYNCVLA_WS:-$REPO/.ws}/activate.sh"
cd "$REPO"
exec python -m pytest -q -rs test "$@"
