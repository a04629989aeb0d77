"""Kill each node of the sim graph in turn (kill -9 while the policy acts) and report what followed, as JSON.

    asyncvla-ros bench-kill                       # every node, separate and co-located
    asyncvla-ros bench-kill --nodes semantic action --modes separate
    asyncvla-ros bench-kill --launcher ros2       # under `ros2 launch asyncvla_ros robot.launch.py`

Per case, under either launcher: the commands published to the driver after the death (how many
moved the arm, and how many arrived before it was deactivated, so that it applied them), the seconds
until the arm held (the last command to reach the driver), the driver's lifecycle transitions after
the death as it published them (`driver/transition_event`, with their times), what each node's
diagnostics said last before the graph stopped, and what the launcher said (its last line about the
death, and its exit code). Figures, not pass/fail (the machine's load decides the times);
`test/nodes/test_launcher_teardown.py` checks the semantic node's case.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from asyncvla_ros.bench.graph import MODES
from asyncvla_ros.bench.report import emit

MOVED_RAD = 1e-4  # a command further than this from the one before it moves the arm
ACTING_COMMANDS = 20  # commands seen on safe_joint_command before the graph counts as acting
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}  # diagnostic_msgs/DiagnosticStatus levels
LAUNCHERS = ("asyncvla", "ros2")
NODES = ("front_camera", "wrist_camera", "semantic", "action", "safety_filter", "driver", "visualizer")


def node_process(launcher: subprocess.Popen, node: str, colocated: bool):
    """The process of `node` among the launcher's children (co-located: semantic and action share one)."""
    import psutil

    for p in psutil.Process(launcher.pid).children(recursive=True):
        cmd = " ".join(p.cmdline())
        if f"__node:={node}" in cmd or (colocated and node in ("semantic", "action") and "policy_node" in cmd):
            return p
    return None


def launch_command(launcher: str, colocated: bool, log_dir: Path) -> tuple[list[str], dict]:
    """The command line and environment that start the sim graph under `launcher`."""
    if launcher == "ros2":
        if shutil.which("ros2") is None:
            raise SystemExit("bench-kill --launcher ros2: no `ros2` on PATH (source a ROS 2 install, or see scripts/check_ros2_launch.sh)")
        # ros2 launch writes each node's log under ROS_LOG_DIR.
        return (["ros2", "launch", "asyncvla_ros", "robot.launch.py", f"colocated:={str(colocated).lower()}"],
                {**os.environ, "ROS_LOG_DIR": str(log_dir)})
    return ([sys.executable, "-m", "asyncvla_ros.cli", "launch", "--log-dir", str(log_dir)] + (["--colocated"] if colocated else []),
            dict(os.environ))


def run_case(node: str, colocated: bool, log_dir: Path, settle_s: float, launcher_name: str = "asyncvla") -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import TransitionEvent
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    log_dir.mkdir(parents=True, exist_ok=True)
    out = log_dir / f"{node}.out"
    cmd, env = launch_command(launcher_name, colocated, log_dir / node)
    launcher = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    probe = rclpy.create_node(f"kill_probe_{node}")
    received: list[tuple[float, tuple[float, ...]]] = []
    transitions: list[tuple[float, str, str]] = []  # (time, from, to) as the driver published them
    diagnostics: dict[str, tuple[float, str]] = {}  # status name -> (time, "LEVEL: message"), the latest
    probe.create_subscription(JointState, "safe_joint_command", lambda m: received.append((time.time(), tuple(m.position))), 50)
    probe.create_subscription(TransitionEvent, "driver/transition_event",
                              lambda m: transitions.append((time.time(), m.start_state.label, m.goal_state.label)), 10)

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            diagnostics[status.name] = (time.time(), f"{LEVELS.get(int.from_bytes(status.level, 'little'), status.level)}: {status.message}")

    probe.create_subscription(DiagnosticArray, "diagnostics", on_diagnostics, 50)
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    try:
        deadline = time.monotonic() + 240
        while len(received) < ACTING_COMMANDS:  # the policy acts: commands reach the driver
            if launcher.poll() is not None or time.monotonic() > deadline:
                return {"node": node, "error": "the graph did not act", "launcher_tail": out.read_text()[-1500:]}
            executor.spin_once(timeout_sec=0.2)
        end = time.monotonic() + settle_s  # commands flowing before the kill
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        target = node_process(launcher, node, colocated)
        if target is None:
            return {"node": node, "error": "no such process in this graph"}
        killed_at = time.time()
        target.kill()
        end = time.monotonic() + 60
        while launcher.poll() is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(30)
    finally:
        executor.shutdown()
        probe.destroy_node()
        if launcher.poll() is None:
            launcher.kill()
    before = [p for t, p in received if t < killed_at]
    after = [(t, p) for t, p in received if t >= killed_at]
    moved, last = 0, before[-1] if before else None
    for _, p in after:
        if last is not None and max(abs(a - b) for a, b in zip(p, last)) > MOVED_RAD:
            moved += 1
        last = p
    after_death = [(round(t - killed_at, 2), f"{a} -> {b}") for t, a, b in transitions if t >= killed_at]
    # Motion is off once the driver left "active": deactivated, or shut down from it.
    deactivated = next((t for t, a, b in transitions if t >= killed_at and b in ("inactive", "finalized")), None)
    disabled_s = round(deactivated - killed_at, 2) if deactivated is not None else None
    if node == "driver":
        state = "dead (killed: no command is applied; a real arm holds its last goal in its servos)"
    elif after_death:
        state = " then ".join(f"{change} at {t:.2f} s" for t, change in after_death)
    else:
        state = "no transition published after the death"
    lines = out.read_text().strip().splitlines()
    # A deactivated driver ignores what still arrives; before that, it applied it. A dead one applies nothing.
    if node == "driver":
        live_until = killed_at
    else:
        live_until = deactivated if deactivated is not None else float("inf")
    return {
        "node": node,
        "commands_to_driver_after_death": len(after),
        "of_which_moved": moved,
        "applied_before_motion_disabled": sum(1 for t, _ in after if t < live_until),
        "arm_held_after_s": round(after[-1][0] - killed_at, 2) if after else 0.0,
        "motion_disabled_after_s": disabled_s,
        "driver_lifecycle_after_death": state,
        # What each node's diagnostics said last, from those that published after the death.
        "diagnostics_after_death": {name: said for name, (t, said) in sorted(diagnostics.items()) if t >= killed_at},
        "launcher_exit_code": launcher.returncode,
        "launcher_said": next((line for line in reversed(lines) if re.search(r"stopped|stopping|died", line)), lines[-1] if lines else ""),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-kill", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", nargs="+", choices=NODES, default=list(NODES))
    parser.add_argument("--modes", choices=("both", "separate", "colocated"), default="both")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of acting before the kill")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="asyncvla",
                        help="asyncvla-ros launch, or ros2 launch asyncvla_ros robot.launch.py (needs ros2 on PATH)")
    parser.add_argument("--out", default="", help="also write the JSON report here")
    parser.add_argument("--log-dir", default="", help="keep each case's launcher and node logs here (default: a temporary folder)")
    opts = parser.parse_args(argv)
    import rclpy

    rclpy.init(args=[])
    results = []
    try:
        with (nullcontext(opts.log_dir) if opts.log_dir else tempfile.TemporaryDirectory(prefix="asyncvla-kill-")) as logs:
            for colocated in MODES[opts.modes]:
                mode = "colocated" if colocated else "separate"
                for node in opts.nodes:
                    if colocated and node == "action" and "semantic" in opts.nodes:
                        continue  # one process holds both: its case is the semantic one
                    print(f"bench-kill: {mode}, kill -9 {node}", file=sys.stderr, flush=True)
                    case = run_case(node, colocated, Path(logs) / mode, opts.settle, opts.launcher)
                    if colocated and node in ("semantic", "action"):
                        case["node"] = "policy (semantic + action)"
                    results.append({"launcher": opts.launcher, "mode": mode, **case})
    finally:
        rclpy.try_shutdown()
    emit(results, opts.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
