#!/usr/bin/env bash
# Takes a fresh clone to a working development environment on a Debian machine with no system ROS:
# system libraries, a Python venv with the pinned policy/sim/ROS 2 stack, and a colcon build of this
# package (messages included). Idempotent: a re-run skips what is already done.
#
#   scripts/setup_env.sh
#   source ~/.cache/asyncvla_ros/venv-py311/bin/activate && source .ws/install/setup.bash
#   python -c 'from asyncvla_ros.msg import ActionChunk'
#
# Environment:
#   ASYNCVLA_VENV     venv to create or reuse            (default: ~/.cache/asyncvla_ros/venv-py311)
#   ASYNCVLA_WS       colcon workspace: build/install/log (default: <repo>/.ws)
#   ASYNCVLA_PYTHON   interpreter that creates the venv   (default: python3; must be 3.11, the
#                     version requirements/env.txt was locked and tested on)
#   ASYNCVLA_SKIP_APT set to 1 to skip the system packages (e.g. when not root and they are present)
#
# Details of every step go to <ws>/setup_env.log; the terminal shows one line per stage.
# -E: the ERR trap below also fires for failures inside functions and subshells.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The venv lives outside the source tree: CMake refuses exported include paths (the venv's NumPy
# headers, used by the generated Python bindings) that lie inside the package's source directory.
VENV="${ASYNCVLA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncvla_ros/venv-py311}"
WS="${ASYNCVLA_WS:-$REPO/.ws}"
PYTHON="${ASYNCVLA_PYTHON:-python3}"
LOG="$WS/setup_env.log"
REQ_TORCH="$REPO/requirements/torch.txt"
REQ_ENV="$REPO/requirements/env.txt"
REQ_NODEPS="$REPO/requirements/nodeps.txt"
REQ_DEEPSPEED="$REPO/requirements/deepspeed.txt"

# libegl1/libosmesa6/libgl1: MuJoCo renders headless through EGL or OSMesa.
# cmake/g++/make: colcon builds the messages' C type support and Python bindings.
APT_PACKAGES=(libegl1 libosmesa6 libgl1 cmake g++ make)

mkdir -p "$WS"
: >"$LOG"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

STAGE=""
T_START=$SECONDS
stage() {
  STAGE="$1"
  printf '==> [%3ds] %s\n' "$((SECONDS - T_START))" "$STAGE"
  printf '\n===== %s (%s) =====\n' "$STAGE" "$(date -u +%FT%TZ)" >>"$LOG"
}
note() { printf '    %s\n' "$*"; printf '%s\n' "$*" >>"$LOG"; }
on_error() {
  local rc=$?
  # In a subshell, just pass the failure up: the top level reports it once.
  if ((BASH_SUBSHELL > 0)); then exit "$rc"; fi
  printf '\nsetup_env: stage "%s" FAILED (exit %d). Last lines of %s:\n' "$STAGE" "$rc" "$LOG" >&2
  tail -n 30 "$LOG" >&2
  exit "$rc"
}
trap on_error ERR
# Run a command with its output in the log only.
run() { printf '$ %s\n' "$*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }
fail() { printf '%s\n' "$*" >>"$LOG"; printf 'setup_env: %s\n' "$*" >&2; false; }
sha_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# -------------------------------------------------------------------------------------------------
stage "python interpreter ($PYTHON)"
if ! py_version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>>"$LOG")"; then
  fail "cannot run $PYTHON; set ASYNCVLA_PYTHON to a Python 3.11 interpreter"
fi
if [[ "$py_version" != 3.11 ]]; then
  fail "$PYTHON is Python $py_version; requirements/env.txt is locked for 3.11 (set ASYNCVLA_PYTHON)"
fi
note "Python $py_version"

# -------------------------------------------------------------------------------------------------
stage "system packages"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# A Debian python3 (rather than a self-built one, as here) needs these for venvs and for rosidl's
# Python bindings, which compile against Python.h.
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
if ! "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  missing+=(python3-dev)
fi
if ((${#missing[@]} == 0)); then
  note "present"
elif [[ "${ASYNCVLA_SKIP_APT:-0}" == 1 ]]; then
  note "missing but skipped (ASYNCVLA_SKIP_APT=1): ${missing[*]}"
elif [[ $EUID -ne 0 ]]; then
  fail "missing system packages: ${missing[*]}; run as root, or install them with sudo apt-get install and re-run"
else
  note "installing: ${missing[*]}"
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# -------------------------------------------------------------------------------------------------
stage "python venv ($VENV)"
# Every checkout shares the venv: two set-ups at once (two clones, a test clone beside a training run)
# would race on its packages and its editable install, so each holds a lock on it to the end.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
if ! flock -n 9; then
  note "another setup_env.sh is using the venv; waiting for it"
  flock 9
fi
if [[ -x "$VENV/bin/python" ]]; then
  venv_version="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [[ "$venv_version" != "$py_version" ]]; then
    fail "$VENV is a Python $venv_version venv, not $py_version: remove it or set ASYNCVLA_VENV"
  fi
  note "exists"
else
  run "$PYTHON" -m venv "$VENV"
  note "created with $("$VENV/bin/python" --version)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip)

# -------------------------------------------------------------------------------------------------
stage "python packages (requirements/torch.txt, env.txt, nodeps.txt, deepspeed.txt)"
req_stamp="$VENV/.asyncvla_requirements.sha256"
req_hash="$(sha_of "$REQ_TORCH" "$REQ_ENV" "$REQ_NODEPS" "$REQ_DEEPSPEED")"
if [[ -f "$req_stamp" && "$(cat "$req_stamp")" == "$req_hash" ]]; then
  note "up to date"
else
  # torch first and alone, with its exact pin: a later resolve that sees only "torch>=x" (or a
  # package depending on torch) could otherwise pick a multi-GB CUDA build from the index. env.txt
  # constrains torch's own dependencies so the second step doesn't reinstall them.
  run "${PIP[@]}" install -c "$REQ_ENV" -r "$REQ_TORCH"
  run "${PIP[@]}" install -r "$REQ_ENV"
  # --no-deps: these packages' own metadata asks for more than we use (see the file).
  run "${PIP[@]}" install --no-deps -r "$REQ_NODEPS"
  # A source package whose build imports torch: built against this venv's (see the file).
  run "${PIP[@]}" install --no-build-isolation -c "$REQ_ENV" -r "$REQ_DEEPSPEED"
  # Every other package must be consistent; what pip says of the --no-deps ones is expected.
  nodeps_names="$(sed -e 's/#.*//' -e 's/[=<>~!;[ ].*//' "$REQ_NODEPS" | tr 'A-Z_' 'a-z-' | grep -v '^$' || true)"
  check_out="$("${PIP[@]}" check 2>&1 || true)"
  printf '$ pip check\n%s\n' "$check_out" >>"$LOG"
  problems="$(printf '%s\n' "$check_out" | { grep -v '^No broken requirements' || true; } | while read -r name _; do
    [[ -z "$name" ]] && continue
    grep -qxF "$(printf '%s' "$name" | tr 'A-Z_' 'a-z-')" <<<"$nodeps_names" || printf '%s\n' "$name"
  done)"
  if [[ -n "$problems" ]]; then
    fail "pip check reports broken requirements of: $(echo $problems) (see $LOG)"
  fi
  printf '%s\n' "$req_hash" >"$req_stamp"
  note "installed; torch $("$PY" -c 'import torch; print(torch.__version__)')"
fi

# -------------------------------------------------------------------------------------------------
stage "build path fixes (/opt/python)"
# The ROS wheels' exported CMake targets name the include directories of the machine they were built
# on (/opt/python/cpXY-cpXY/...). CMake refuses targets whose include paths don't exist, so point
# those paths at this interpreter's headers and this venv's NumPy headers. Re-pointed on every run:
# the links are machine-wide and may still name a venv that has since been deleted.
read -r py_tag py_include np_include < <("$PY" -c '
import sys, sysconfig, numpy
tag = "cp%d%d" % sys.version_info[:2]
print(tag, sysconfig.get_paths()["include"], numpy.get_include())')
py_ver_dir="python$py_version"
opt_root="/opt/python/$py_tag-$py_tag"
link_to() {  # link_to TARGET LINK: make LINK a symlink to TARGET, never replacing a real directory
  local target="$1" link="$2"
  if [[ -e "$link" && ! -L "$link" ]]; then
    note "left alone (a real directory): $link"
    return
  fi
  run mkdir -p "$(dirname "$link")"
  run ln -sfn "$target" "$link"
}
if ! mkdir -p "$opt_root" 2>>"$LOG"; then
  fail "cannot create $opt_root; run as root (or create it writable) and re-run"
fi
link_to "$py_include" "$opt_root/include/$py_ver_dir"
link_to "$np_include" "$opt_root/lib/$py_ver_dir/site-packages/numpy/_core/include"
note "$opt_root -> $py_include, $np_include"

# -------------------------------------------------------------------------------------------------
stage "pip install -e . (the asyncvla_ros package and the asyncvla-ros CLI)"
pkg_stamp="$VENV/.asyncvla_editable.sha256"
pkg_hash="$(sha_of "$REPO/setup.py" "$REPO/setup.cfg" "$REPO/package.xml"; printf '%s' "$REPO")"
if [[ -f "$pkg_stamp" && "$(cat "$pkg_stamp")" == "$pkg_hash" ]]; then
  note "up to date"
else
  # --no-deps: every dependency is already pinned above, and the extras would only re-resolve them.
  # --no-build-isolation: use the venv's setuptools instead of fetching one per install.
  run "${PIP[@]}" install --no-deps --no-build-isolation -e "$REPO"
  printf '%s\n' "$pkg_hash" >"$pkg_stamp"
  note "installed"
fi

# -------------------------------------------------------------------------------------------------
stage "colcon build ($WS)"
# colcon and CMake find the ROS wheels through the venv root, laid out like a ROS install prefix.
# colcon itself is incremental: with nothing changed this takes a second or two.
# --symlink-install: the install space links to the Python sources, so edits need no rebuild (new
# files, messages and node entries do).
(
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  cd "$WS"
  run colcon --log-base "$WS/log" build \
    --base-paths "$REPO" --build-base "$WS/build" --install-base "$WS/install" \
    --symlink-install --event-handlers console_direct+ \
    --cmake-args -DPython3_EXECUTABLE="$PY"
)

# -------------------------------------------------------------------------------------------------
stage "smoke test"
(
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  set +u  # colcon's setup scripts read variables that may be unset
  # shellcheck disable=SC1091
  source "$WS/install/setup.bash"
  set -u
  # From the workspace, not the repo root: there, the source tree's asyncvla_ros (which has no
  # generated msg/ subpackage) would shadow the install space's.
  cd "$WS"
  run python -c '
import rclpy, rclpy.lifecycle, lifecycle_msgs.msg, mujoco
from asyncvla_ros.msg import ActionChunk, SafetyEvent, SemanticFeatures
from rclpy.serialization import deserialize_message, serialize_message
msg = ActionChunk(horizon=2, action_dim=1, actions=[0.5, -0.5])
assert deserialize_message(serialize_message(msg), ActionChunk) == msg
print("ok")'
)
note "asyncvla_ros.msg, rclpy, rclpy.lifecycle and mujoco import"

# One file to source for a shell with everything on it (the run scripts and .ci/run use it).
cat >"$WS/activate.sh" <<ACTIVATE
# Generated by scripts/setup_env.sh: the venv and the colcon install space of this checkout.
source "$VENV/bin/activate"
# colcon's setup scripts read variables that may be unset: lift nounset around them, then restore it.
_asyncvla_flags=\$-
set +u
source "$WS/install/setup.bash"
case \$_asyncvla_flags in *u*) set -u ;; esac
unset _asyncvla_flags
ACTIVATE

trap - ERR
printf '==> done in %ds. To use:\n    source %s/activate.sh\n' "$((SECONDS - T_START))" "$WS"
