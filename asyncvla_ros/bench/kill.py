"""Kill each node of the sim graph in turn (kill -9 while the policy acts) and report what followed, as JSON.

    asyncvla-ros bench-kill                       # every node, separate and co-located
    asyncvla-ros bench-kill --nodes semantic action --modes separate

Per case, under `asyncvla-ros launch`: the commands published to the driver after the death (how many
moved the arm, and how many arrived before it was deactivated, so that it applied them), the seconds
until the arm held (the last command to reach the driver),
the seconds until the driver logged "motion disabled", the driver's lifecycle state as its log shows
it, and what the launcher said (its last line and exit code). Figures, not pass/fail (the machine's
load decides the times); `test/nodes/test_launcher_teardown.py` checks the semantic node's case.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asyncvla_ros.bench.graph import MODES
from asyncvla_ros.bench.report import emit

MOVED_RAD = 1e-4  # a command further than this from the one before it moves the arm
NODES = ("front_camera", "wrist_camera", "semantic", "action", "safety_filter", "driver", "visualizer")


def node_process(launcher: subprocess.Popen, node: str, colocated: bool):
    """The process of `node` among the launcher's children (co-located: semantic and action share one)."""
    import psutil

    for p in psutil.Process(launcher.pid).children(recursive=True):
        cmd = " ".join(p.cmdline())
        if f"__node:={node}" in cmd or (colocated and node in ("semantic", "action") and "policy_node" in cmd):
            return p
    return None


def run_case(node: str, colocated: bool, log_dir: Path, settle_s: float) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    log_dir.mkdir(parents=True, exist_ok=True)
    out = log_dir / f"{node}.out"
    cmd = [sys.executable, "-m", "asyncvla_ros.cli", "launch", "--log-dir", str(log_dir / node)] + (["--colocated"] if colocated else [])
    launcher = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    probe = rclpy.create_node(f"kill_probe_{node}")
    received: list[tuple[float, tuple[float, ...]]] = []
    probe.create_subscription(JointState, "safe_joint_command", lambda m: received.append((time.time(), tuple(m.position))), 50)
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    try:
        deadline = time.monotonic() + 240
        while not re.search(r"\| chunks [1-9]", out.read_text()):
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
    driver_log = (log_dir / node / "driver.log").read_text(errors="replace") if (log_dir / node / "driver.log").exists() else ""
    disabled = [line for line in driver_log.splitlines() if "motion disabled" in line]
    disabled_s = None
    if disabled:
        stamp = re.search(r"\[(\d+\.\d+)\]", disabled[0])
        disabled_s = round(float(stamp.group(1)) - killed_at, 2) if stamp else None
    if node == "driver":
        state = "dead (killed: no command is applied; a real arm holds its last goal in its servos)"
    elif disabled and "(driver shutting down)" not in disabled[0]:
        state = "inactive (deactivated by the launcher before the graph stopped)"
    elif disabled:
        state = "finalized while shutting down (motion disabled on exit)"
    else:
        state = "unknown: no 'motion disabled' in its log"
    lines = out.read_text().strip().splitlines()
    # A deactivated driver ignores what still arrives; before that, it applied it. A dead one applies nothing.
    if node == "driver":
        live_until = killed_at
    else:
        live_until = killed_at + disabled_s if disabled_s is not None else float("inf")
    return {
        "node": node,
        "commands_to_driver_after_death": len(after),
        "of_which_moved": moved,
        "applied_before_motion_disabled": sum(1 for t, _ in after if t < live_until),
        "arm_held_after_s": round(after[-1][0] - killed_at, 2) if after else 0.0,
        "motion_disabled_after_s": disabled_s,
        "driver_state": state,
        "launcher_exit_code": launcher.returncode,
        "launcher_said": next((line for line in reversed(lines) if "stopped" in line), lines[-1] if lines else ""),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-kill", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", nargs="+", choices=NODES, default=list(NODES))
    parser.add_argument("--modes", choices=("both", "separate", "colocated"), default="both")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of acting before the kill")
    parser.add_argument("--out", default="", help="also write the JSON report here")
    opts = parser.parse_args(argv)
    import rclpy

    rclpy.init(args=[])
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="asyncvla-kill-") as logs:
            for colocated in MODES[opts.modes]:
                mode = "colocated" if colocated else "separate"
                for node in opts.nodes:
                    if colocated and node == "action" and "semantic" in opts.nodes:
                        continue  # one process holds both: its case is the semantic one
                    print(f"bench-kill: {mode}, kill -9 {node}", file=sys.stderr, flush=True)
                    case = run_case(node, colocated, Path(logs) / mode, opts.settle)
                    if colocated and node in ("semantic", "action"):
                        case["node"] = "policy (semantic + action)"
                    results.append({"mode": mode, **case})
    finally:
        rclpy.try_shutdown()
    emit(results, opts.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
