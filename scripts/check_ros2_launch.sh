#!/usr/bin/env bash
# Developer check (not part of the tests): run launch/robot.launch.py under the real ROS 2 launch
# system, `ros2 launch asyncvla_ros robot.launch.py`, on a machine whose ROS 2 comes from PyPI wheels
# (which carry no launch, launch_ros or ros2cli). Prints PASS/FAIL lines; exits 1 if any check failed.
#
#   scripts/check_ros2_launch.sh SRC_DIR [SECONDS]
#
# SRC_DIR holds exported sources (`git archive` output is enough) of, ideally, the branches matching
# the ROS wheels (Kilted):
#   SRC_DIR/launch          github.com/ros2/launch          (launch, launch_xml, launch_yaml)
#   SRC_DIR/launch_ros      github.com/ros2/launch_ros      (launch_ros, ros2launch)
#   SRC_DIR/ros2cli         github.com/ros2/ros2cli         (ros2cli, ros2pkg)
#   SRC_DIR/rcl_interfaces  github.com/ros2/rcl_interfaces  (composition_interfaces, which launch_ros
#                                                            imports; built here with colcon)
# e.g. for r in launch launch_ros ros2cli rcl_interfaces; do
#        git clone -q -b kilted https://github.com/ros2/$r /tmp/$r
#        mkdir -p SRC_DIR/$r && git -C /tmp/$r archive HEAD | tar -x -C SRC_DIR/$r; done
#
# They are installed into a scratch venv that sees the project venv's packages (the project venv made by
# scripts/setup_env.sh is not modified). Then each run starts the graph, probes it after SECONDS-6 s
# (default 30 s per run), presses Ctrl-C and checks that every node started from the install space, the
# driver was configured and activated by the launch file, the action node acts (no "holding" logged in
# the second half of the run), and all processes ended cleanly. Runs: default args, colocated:=true,
# instruction:=..., all with a terminal's Ctrl-C (SIGINT to the whole process group, `ros2 launch`
# interactive), and default args once more with SIGINT sent to `ros2 launch` alone (non-interactive, as
# a supervisor would; launch forwards it to the nodes), where the probe also deactivates the driver and
# checks that it stays inactive (the launch file must activate it only once, after configuring). Each
# run also prints how long after Ctrl-C each process finished and checks that none needed launch's
# escalation to SIGTERM. Last, kill -9 of the semantic node: the launch file must deactivate the driver
# (motion disabled) and then stop the graph with exit code 1, naming the process that died. And with
# respawn:=true, the same kill must restart the node while the graph (and the driver) go on; that for the
# semantic node, the action node and a camera.
# With ASYNCVLA_KILL_TABLE=1 it runs none of these but `asyncvla-ros bench-kill --launcher ros2` (kill -9
# of each node in turn, separate and co-located) and writes its JSON to $ASYNCVLA_CHECK_DIR/logs/kill-table.json.
#
# Environment: ASYNCVLA_VENV, ASYNCVLA_WS (as for setup_env.sh), ASYNCVLA_CHECK_DIR (scratch venv,
# workspace and logs; default /tmp/asyncvla-launch-check), ROS_DOMAIN_ID (default 91).
set -Eeuo pipefail

SRC="${1:?usage: $0 SRC_DIR [SECONDS]}"
SRC="$(cd "$SRC" && pwd)"
SECS="${2:-30}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASYNCVLA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncvla_ros/venv-py311}"
WS="${ASYNCVLA_WS:-$REPO/.ws}"
CHECK="${ASYNCVLA_CHECK_DIR:-/tmp/asyncvla-launch-check}"
SVENV="$CHECK/venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
((SECS >= 24)) || { echo "SECONDS must be >= 24 (the policy takes ~10 s to load)" >&2; exit 2; }
for d in launch/launch launch/launch_xml launch/launch_yaml launch_ros/launch_ros launch_ros/ros2launch \
         ros2cli/ros2cli ros2cli/ros2pkg rcl_interfaces/composition_interfaces; do
  [[ -f "$SRC/$d/package.xml" ]] || { echo "missing $SRC/$d (see the usage at the top of $0)" >&2; exit 2; }
done
[[ -x "$VENV/bin/python" && -d "$WS/install/asyncvla_ros" ]] || { echo "run scripts/setup_env.sh first" >&2; exit 2; }
mkdir -p "$CHECK/logs"

# --- scratch venv -----------------------------------------------------------------------------------
echo "==> scratch venv $SVENV (log: $CHECK/setup.log)"
: >"$CHECK/setup.log"
if [[ ! -x "$SVENV/bin/python" ]]; then
  "$VENV/bin/python" -m venv "$SVENV"
fi
sp_of() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
VSP="$(sp_of "$VENV/bin/python")"
SSP="$(sp_of "$SVENV/bin/python")"
# See the project venv's packages (its .pth files included), after the scratch venv's own.
echo "import site; site.addsitedir('$VSP')" >"$SSP/zz_asyncvla_project_venv.pth"
# The ROS wheels' start-up hook (ros_wheels_bootstrapper) puts sys.prefix/lib and
# site-packages/ros_*.libs on LD_LIBRARY_PATH, where sys.prefix is now the scratch venv: link them there.
ln -sf "$VENV"/lib/*.so* "$SVENV/lib/"
ln -sfn "$VSP"/ros_*.libs "$SSP/"
"$SVENV/bin/pip" install --no-deps \
  "$SRC/launch/launch" "$SRC/launch/launch_xml" "$SRC/launch/launch_yaml" \
  "$SRC/launch_ros/launch_ros" "$SRC/launch_ros/ros2launch" "$SRC/ros2cli/ros2cli" "$SRC/ros2cli/ros2pkg" \
  >>"$CHECK/setup.log" 2>&1
for dep in osrf_pycommon:osrf-pycommon psutil:psutil lark:lark; do  # their pure-Python dependencies
  "$SVENV/bin/python" -c "import ${dep%%:*}" 2>/dev/null || "$SVENV/bin/pip" install "${dep#*:}" >>"$CHECK/setup.log" 2>&1
done
if [[ ! -f "$CHECK/ws/install/composition_interfaces/share/composition_interfaces/package.xml" ]]; then
  echo "==> colcon build composition_interfaces (~20 s)"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    mkdir -p "$CHECK/ws" && cd "$CHECK/ws"
    colcon --log-base log build --base-paths "$SRC/rcl_interfaces/composition_interfaces" \
      --build-base build --install-base install --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" \
      -DBUILD_TESTING=OFF >>"$CHECK/setup.log" 2>&1
  )
fi

# shellcheck disable=SC1091
source "$SVENV/bin/activate"
set +u  # colcon's setup scripts read unset variables
# shellcheck disable=SC1091
source "$CHECK/ws/install/setup.bash"
# shellcheck disable=SC1091
source "$WS/install/setup.bash"
set -u
export MUJOCO_GL="${MUJOCO_GL:-egl}" ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-91}" ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR="$CHECK/logs/ros"
cd "$CHECK"  # not the repo root: its asyncvla_ros/ (no generated msg/) would shadow the install space's
echo "    launch from $(python -c 'import launch, os; print(os.path.dirname(launch.__file__))')"

FAILED=0
check() {  # check NAME DETAIL CONDITION...
  local name="$1" detail="$2"; shift 2
  if "$@"; then echo "PASS $name"; else echo "FAIL $name: $detail"; FAILED=1; fi
}

# --- --show-args --------------------------------------------------------------------------------------
ros2 launch asyncvla_ros robot.launch.py --show-args >"$CHECK/logs/show-args.log" 2>&1 || true
missing="$(python - "$CHECK/logs/show-args.log" <<'EOF'
import sys
from asyncvla_ros.launch_graph import ARGUMENTS
text = open(sys.argv[1]).read()
print(" ".join(n for n, (default, help_text) in ARGUMENTS.items()
                if f"'{n}':" not in text or help_text not in text or f"(default: '{default}')" not in text))
EOF
)"
check "--show-args lists every argument with its description and default" "missing: $missing (see $CHECK/logs/show-args.log)" \
  test -z "$missing"

# --- probe of a running graph -------------------------------------------------------------------------
cat >"$CHECK/probe.py" <<'EOF'
"""probe.py LAUNCH_PID SECONDS: the graph's processes, nodes, driver state, /diagnostics, semantic instruction.
probe.py LAUNCH_PID deactivate: deactivate the driver, wait 3 s, print its state."""
import sys, time
import psutil, rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters

rclpy.init()
node = rclpy.create_node("launch_check_probe")

def call(srv, name, request):
    client = node.create_client(srv, name)
    if not client.wait_for_service(timeout_sec=5.0):
        return None
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=5.0)
    return future.result()

if sys.argv[2] == "deactivate":
    done = call(ChangeState, "/driver/change_state",
                ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
    time.sleep(3.0)
    state = call(GetState, "/driver/get_state", GetState.Request())
    print("deactivated:", bool(done and done.success), "state 3 s later:", state.current_state.label if state else "no answer")
    sys.exit(0)

procs = psutil.Process(int(sys.argv[1])).children(recursive=True)
print("pids:", " ".join(str(p.pid) for p in procs))
print("exes:", " ".join(sorted({(p.cmdline()[1:2] or ["?"])[0] for p in procs})))  # [0] is the interpreter
status = {}
node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: status.update({s.name: s for s in m.status}), 50)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)

state = call(GetState, "/driver/get_state", GetState.Request())
params = call(GetParameters, "/semantic/get_parameters", GetParameters.Request(names=["instruction"]))
print("nodes:", " ".join(sorted(n for n, _ in node.get_node_names_and_namespaces() if n != node.get_name()
                                and not n.startswith("launch_ros_"))))
print("driver_state:", state.current_state.label if state else "no answer")
print("instruction:", params.values[0].string_value if params else "no answer")
for name, s in sorted(status.items()):
    print(f"diag {name}: {s.message} |", " ".join(f"{v.key}={v.value}" for v in s.values))
node.destroy_node()
rclpy.try_shutdown()
EOF

# --- runs ---------------------------------------------------------------------------------------------
alive() { kill -0 "$1" 2>/dev/null; }
wait_gone() {  # wait_gone PID TIMEOUT_S: 0 once PID has exited
  local t=0
  while alive "$1" && ((t < $2 * 10)); do sleep 0.1; t=$((t + 1)); done
  ! alive "$1"
}

run_check() {  # run_check LABEL terminal|launch-only [LAUNCH ARG:=VALUE]...
  local label="$1" sigint="$2"; shift 2
  local deactivate=false; [[ "$sigint" == launch-only ]] && deactivate=true
  local log="$CHECK/logs/$label.log" probe="$CHECK/logs/$label.probe" cmd pid waiter rc
  local colocated=false instruction="" a
  for a in "$@"; do
    case "$a" in colocated:=*) colocated="${a#*:=}" ;; instruction:=*) instruction="${a#*:=}" ;; esac
  done
  local nprocs
  nprocs="$(python -c "from asyncvla_ros.launch_graph import LaunchArgs, graph
print(len(graph(LaunchArgs(colocated='$colocated' == 'true'))))")"
  echo "==> $label: ros2 launch asyncvla_ros robot.launch.py $* ($SECS s, Ctrl-C: $sigint; log $log)"
  cmd="$(printf '%q ' ros2 launch asyncvla_ros robot.launch.py "$@")"
  if [[ "$sigint" == terminal ]]; then
    # A pseudo-terminal, so ros2 launch is interactive; Ctrl-C = SIGINT to its process group.
    script -qfec "$cmd" /dev/null </dev/null >"$log" 2>&1 &
    waiter=$!
    sleep 1
    pid="$(pgrep -P "$waiter" | head -n1)"
  else
    # Own session, and SIGINT back to its default: bash starts background commands with SIGINT ignored.
    setsid env --default-signal=INT bash -c "exec $cmd" </dev/null >"$log" 2>&1 &
    waiter=$!
    pid=$waiter
  fi
  if [[ -z "$pid" ]]; then
    check "$label: ros2 launch started" "see $log" false
    wait "$waiter" || true
    return
  fi
  sleep $((SECS / 2))
  local mark_start mark_end
  mark_start="$(wc -l <"$log")"  # the graph has started by now: no "holding" from here on
  sleep $((SECS - SECS / 2 - 6))
  # The window ends before the probe starts: its own start-up (a CPU burst on 2 cores) can make the
  # semantic features' 0.1 s liveliness lease lapse for a tick, which the graph then reports as a hold.
  mark_end="$(wc -l <"$log")"
  python "$CHECK/probe.py" "$pid" 5 >"$probe" 2>&1 || true
  if $deactivate; then python "$CHECK/probe.py" "$pid" deactivate >>"$probe" 2>&1 || true; fi
  local mark_sigint
  mark_sigint="$(wc -l <"$log")"
  local delays="$CHECK/logs/$label.exit" node_pids=()
  read -ra node_pids <<<"$(sed -n 's/^pids: //p' "$probe")"
  exit_delays "$delays.t0" "${node_pids[@]}" >"$delays" &
  local watcher=$!
  sleep 0.5  # the watcher is polling
  date +%s.%N >"$delays.t0"
  if [[ "$sigint" == terminal ]]; then kill -INT -- "-$pid" || true; else kill -INT "$pid" || true; fi
  local stopped=true
  wait_gone "$waiter" 30 || { stopped=false; kill -KILL -- "-$pid" 2>/dev/null || true; }
  rc=0; wait "$waiter" || rc=$?
  sed -i 's/\r$//' "$log"

  local leftover="" p pids=()
  read -ra pids <<<"$(sed -n 's/^pids: //p' "$probe")"
  for p in "${pids[@]}"; do wait_gone "$p" 5 || leftover+=" $p"; done
  local exes nodes want_nodes
  want_nodes="$(node_names "$colocated")"
  exes="$(sed -n 's/^exes: //p' "$probe")"
  nodes="$(sed -n 's/^nodes: //p' "$probe")"
  local action_diag holding_after errors
  errors="$( (grep -E 'process has died|Traceback' "$log"; sed -n "$((mark_sigint + 1)),\$p" "$log" | grep -F '[ERROR]') | head -n3)" || true
  action_diag="$(grep '^diag action:' "$probe" || true)"
  holding_after="$(sed -n "$((mark_start + 1)),${mark_end}p" "$log" | grep -o 'holding: .*' | sort | uniq -c || true)"
  check "$label: $nprocs processes started" "$(grep -c 'process started' "$log") started" \
    test "$(grep -c 'process started' "$log")" -eq "$nprocs"
  check "$label: every node executable is the install space's" "$exes" \
    test -n "$exes" -a -z "$(tr ' ' '\n' <<<"$exes" | grep -v "^$WS/install/asyncvla_ros/lib/asyncvla_ros/")"
  check "$label: nodes $want_nodes" "found: $nodes" test "$nodes" == "$want_nodes"
  check "$label: driver configured and activated by the launch file" \
    "state $(sed -n 's/^driver_state: //p' "$probe"); 'motion enabled' logged $(grep -c 'motion enabled' "$log") times" \
    test "$(sed -n 's/^driver_state: //p' "$probe")" == active -a "$(grep -c 'motion enabled' "$log")" -eq 1
  check "$label: action node acting (diagnostics: 'acting', chunks > 0)" "${action_diag:-no action diagnostics}" \
    test "$(sed -n 's/^diag action: \([a-z]*\) .*chunks=\([1-9]\).*/\1/p' "$probe")" == acting
  # On a busy machine, brief holds (a joint state a few ms late) come from CPU contention: see the reasons.
  check "$label: action node logged no 'holding' in the second half" "$(tr '\n' ';' <<<"$holding_after")" \
    test -z "$holding_after"
  if [[ -n "$instruction" ]]; then
    check "$label: semantic node got instruction '$instruction'" "$(grep '^instruction:' "$probe")" \
      test "$(sed -n 's/^instruction: //p' "$probe")" == "$instruction"
  fi
  if $deactivate; then
    check "$label: driver stays inactive after a deactivate (not re-activated by the launch file)" \
      "$(grep '^deactivated:' "$probe" || echo 'no answer')" grep -q '^deactivated: True state 3 s later: inactive$' "$probe"
  fi
  check "$label: Ctrl-C stops ros2 launch within 30 s (exit $rc)" "still running; killed" $stopped
  wait "$watcher" || true
  echo "    seconds from Ctrl-C to each process's exit: $(cat "$delays")"
  check "$label: every node exits within launch's SIGINT grace (no escalation to SIGTERM)" \
    "$(grep -m1 'escalating' "$log")" test -z "$(grep 'escalating' "$log")"
  check "$label: every process finished cleanly, no error logged after Ctrl-C" \
    "$(grep -c 'finished cleanly' "$log") finished cleanly; $errors" \
    test "$(grep -c 'finished cleanly' "$log")" -eq "$nprocs" -a -z "$errors"
  check "$label: no process left behind" "alive:$leftover" test -z "$leftover"
}

# Watch PIDS until each has exited (30 s at most); then print the seconds from the time in file T0 (date +%s.%N,
# written once the signal is sent) to each exit, "-" for one still running.
exit_delays() {  # exit_delays T0 PID...
  python - "$@" <<'EOF'
import os, sys, time
start, pending, done = time.time(), set(map(int, sys.argv[2:])), {}
while pending and time.time() - start < 30:
    for pid in list(pending):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            done[pid] = time.time()
            pending.discard(pid)
    time.sleep(0.01)
t0 = float(open(sys.argv[1]).read())
print(" ".join(f"{d - t0:.2f}" for d in sorted(done.values())) + " -" * len(pending))
EOF
}

node_names() {  # node_names COLOCATED: the graph's ROS node names, sorted (the co-located process holds two)
  python -c "from asyncvla_ros.launch_graph import LaunchArgs, graph
names = [n for s in graph(LaunchArgs(colocated='$1' == 'true')) for n in (('action', 'semantic') if not s.rename else (s.name,))]
print(' '.join(sorted(names)))"
}

kill_check() {  # kill_check NODE: kill -9 one node under ros2 launch; the driver must be deactivated before the graph stops
  local victim="$1" label="kill-$1" log="$CHECK/logs/kill-$1.log" pid waiter t_kill rc=0
  echo "==> $label: ros2 launch asyncvla_ros robot.launch.py, kill -9 $victim after $((SECS - 6)) s (log $log)"
  setsid env --default-signal=INT bash -c "exec ros2 launch asyncvla_ros robot.launch.py" </dev/null >"$log" 2>&1 &
  waiter=$!
  pid=$waiter
  sleep $((SECS - 6))
  t_kill="$(date +%s.%N)"
  pkill -KILL -f "__node:=$victim( |\$)" || true
  local stopped=true
  wait_gone "$waiter" 30 || { stopped=false; kill -KILL -- "-$pid" 2>/dev/null || true; }
  wait "$waiter" || rc=$?
  sed -i 's/\r$//' "$log"
  local disabled
  disabled="$(python - "$log" "$t_kill" <<'EOF'
import re, sys
m = re.search(r"\[INFO\] \[(\d+\.\d+)\] \[driver\]: motion disabled", open(sys.argv[1]).read())
print(f"{float(m.group(1)) - float(sys.argv[2]):.2f}" if m else "")
EOF
)"
  check "$label: the graph stops by itself within 30 s" "still running; killed" $stopped
  check "$label: ros2 launch exits 1 (a failure a supervisor sees)" "exit $rc" test "$rc" -eq 1
  check "$label: the driver logged 'motion disabled'${disabled:+ ${disabled} s after the kill}" "not logged" test -n "$disabled"
  check "$label: launch's error names the process that died" "$(grep 'asyncvla_ros:' "$log" | tail -n2 | tr '\n' ';')" \
    grep -q "Caught exception in launch.*process ${victim}_node-[0-9]* died" "$log"
  check "$label: deactivated before the shutdown" "$(grep -m1 'deactivat' "$log")" \
    grep -q 'driver deactivated (motion disabled); stopping because' "$log"
  sleep 1
  local leftover
  leftover="$(pgrep -f "$WS/install/asyncvla_ros/lib/asyncvla_ros/" | tr '\n' ' ')" || true
  check "$label: no process left behind" "alive: $leftover" test -z "$leftover"
}

respawn_check() {  # respawn_check NODE: with respawn:=true, kill -9 of NODE restarts it; the graph goes on, Ctrl-C still stops it
  local victim="$1" label="respawn-$1" log="$CHECK/logs/respawn-$1.log" pid waiter rc=0 first second
  echo "==> $label: ros2 launch asyncvla_ros robot.launch.py respawn:=true, kill -9 $victim after $((SECS - 6)) s (log $log)"
  setsid env --default-signal=INT bash -c "exec ros2 launch asyncvla_ros robot.launch.py respawn:=true" </dev/null >"$log" 2>&1 &
  waiter=$!
  pid=$waiter
  sleep $((SECS - 6))
  first="$(pgrep -f "__node:=$victim( |\$)" | head -n1)" || true
  pkill -KILL -f "__node:=$victim( |\$)" || true
  sleep 20
  second="$(pgrep -f "__node:=$victim( |\$)" | head -n1)" || true
  local running=false; alive "$waiter" && running=true
  kill -INT -- "-$pid" 2>/dev/null || true
  local stopped=true
  wait_gone "$waiter" 30 || { stopped=false; kill -KILL -- "-$pid" 2>/dev/null || true; }
  wait "$waiter" || rc=$?
  sed -i 's/\r$//' "$log"
  check "$label: the graph still runs 20 s after the kill" "ros2 launch exited" $running
  check "$label: launch restarted $victim (pid $first -> ${second:-none})" "no new process" \
    test -n "$second" -a "$second" != "$first"
  check "$label: the launch file said so" "$(grep 'asyncvla_ros:' "$log" | tail -n2 | tr '\n' ';')" \
    grep -q "died (exit code -9); restarting it in 1 s (restart 1 of 5)" "$log"
  check "$label: the driver was not deactivated" "$(grep -m1 'motion disabled' "$log")" \
    bash -c "! grep -q 'driver deactivated' '$log'"
  check "$label: Ctrl-C stops ros2 launch within 30 s (exit $rc)" "still running; killed" $stopped
}

if [[ "${ASYNCVLA_KILL_TABLE:-0}" == 1 ]]; then  # only the kill table, every node under ros2 launch, both modes
  echo "==> bench-kill --launcher ros2 (about 10 min; log $CHECK/logs/kill-table.log)"
  python -m asyncvla_ros.cli bench-kill --launcher ros2 --out "$CHECK/logs/kill-table.json" 2>"$CHECK/logs/kill-table.log"
  exit $?
fi

run_check default terminal
run_check colocated terminal colocated:=true
run_check instruction terminal "instruction:=put the red cube in the green area"
run_check default-launch-only launch-only
kill_check semantic
for node in semantic action front_camera; do respawn_check "$node"; done

if ((FAILED)); then echo "==> some checks FAILED; logs in $CHECK/logs"; exit 1; fi
echo "==> all checks passed; logs in $CHECK/logs"
