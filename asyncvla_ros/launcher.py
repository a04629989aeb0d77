"""`asyncvla-ros launch`: start the node graph without the ROS launch system.

Starts the processes of `launch_graph.graph()` (the same description `robot.launch.py` uses),
configures and activates the lifecycle driver, prints live figures from /diagnostics once a second,
and stops everything cleanly on Ctrl-C, after --duration seconds, or when a process dies (its log
tail is printed). Child output goes to one log file per process under --log-dir.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from asyncvla_ros.launch_graph import ARGUMENTS, ROBOTS, LaunchArgs, NodeSpec, graph, params_file_for


def node_command(spec: NodeSpec, params_file: Path) -> list[str]:
    """The command line of one node process: the install space's launcher if present, else `python -m`."""
    exe = None
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "lib" / "asyncvla_ros" / spec.executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            exe = [str(candidate)]
            break
    cmd = exe or [sys.executable, "-m", spec.module]
    cmd += ["--ros-args", "--params-file", str(params_file)]
    if spec.rename:
        cmd += ["-r", f"__node:={spec.name}"]
    for key, value in spec.parameters.items():
        cmd += ["-p", f"{key}:={value}"]
    return cmd


class Graph:
    """The running processes of one graph."""

    def __init__(self, specs: list[NodeSpec], params_file: Path, log_dir: Path) -> None:
        self.specs, self.params_file, self.log_dir = specs, params_file, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            log = open(self.log_dir / f"{spec.name}.log", "w")
            # Own process group: Ctrl-C in the terminal reaches the launcher only, which then stops
            # the nodes in order (driver last, after it has been deactivated).
            self.procs[spec.name] = subprocess.Popen(node_command(spec, self.params_file), stdout=log,
                                                     stderr=subprocess.STDOUT, start_new_session=True)

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, timeout_s: float = 10.0) -> None:
        for name in reversed(list(self.procs)):
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Monitor:
    """An rclpy node in the launcher: lifecycle transitions and the latest diagnostics."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        rclpy.init(args=[])
        self.rclpy = rclpy
        self.node = rclpy.create_node("asyncvla_launcher")
        self.status: dict[str, tuple[str, dict]] = {}
        self.node.create_subscription(DiagnosticArray, "diagnostics", self.on_diag, 50)
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def on_diag(self, msg) -> None:
        for s in msg.status:
            self.status[s.name] = (s.message, {kv.key: kv.value for kv in s.values})

    def transition(self, node_name: str, label: str, timeout_s: float = 60.0) -> None:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE}
        client = self.node.create_client(ChangeState, f"{node_name}/change_state")
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"{node_name}: lifecycle service did not appear within {timeout_s} s")
        future = client.call_async(ChangeState.Request(transition=Transition(id=ids[label])))
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not future.done() or not future.result().success:
            raise RuntimeError(f"{node_name}: lifecycle transition {label} failed (see its log)")

    def line(self) -> str:
        a = self.status.get("action", ("", {}))
        s = self.status.get("semantic", ("", {}))
        f = self.status.get("safety_filter", ("", {}))
        av, sv = a[1], s[1]
        return (f"control {av.get('rate_hz', '-')} Hz (p99 period {av.get('period_p99_ms', '-')} ms) | "
                f"plan {av.get('plan_ms_p50', '-')} ms | semantic age {av.get('semantic_age_s', '-')} s, "
                f"refresh {sv.get('refresh_hz', '-')} Hz, encode {sv.get('encode_ms_p50', '-')} ms | "
                f"chunks {av.get('chunks', '-')} | action: {a[0] or '-'} | safety: {f[0] or '-'}")

    def close(self) -> None:
        self.executor.shutdown()
        # The spin thread must be out of rclpy's C++ wait before the process exits: a daemon thread
        # still inside it at interpreter exit aborts ("terminate called without an active exception").
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros launch", description="Start the AsyncVLA node graph.")
    parser.add_argument("--robot", default="sim", choices=ROBOTS, help=ARGUMENTS["robot"][1])
    parser.add_argument("--params-file", default="", help=ARGUMENTS["params_file"][1])
    parser.add_argument("--model", default="", help=ARGUMENTS["model"][1])
    parser.add_argument("--instruction", default="", help=ARGUMENTS["instruction"][1])
    parser.add_argument("--control-rate-hz", type=float, default=0.0, help=ARGUMENTS["control_rate_hz"][1])
    parser.add_argument("--colocated", action="store_true", help=ARGUMENTS["colocated"][1])
    parser.add_argument("--no-visualizer", action="store_true", help="do not " + ARGUMENTS["visualizer"][1])
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds; 0 = run until Ctrl-C")
    parser.add_argument("--log-dir", default="", help="per-process logs; default runs/launch-<time>")
    opts = parser.parse_args(argv)
    try:
        args = LaunchArgs(opts.robot, opts.params_file, opts.model, opts.instruction, opts.control_rate_hz, opts.colocated,
                          visualizer=not opts.no_visualizer)
        params_file = params_file_for(args)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    log_dir = Path(opts.log_dir or f"runs/launch-{time.strftime('%Y%m%d-%H%M%S')}")
    specs = graph(args)
    print(f"asyncvla-ros: {args.robot} graph, params {params_file}, logs in {log_dir}/", flush=True)
    monitor = Monitor()
    procs = Graph(specs, params_file, log_dir)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rc = 0
    try:
        procs.start()
        for spec in specs:
            if spec.lifecycle:
                monitor.transition(spec.name, "configure")
                monitor.transition(spec.name, "activate")
        start = time.monotonic()
        while not stop.is_set():
            if opts.duration and time.monotonic() - start >= opts.duration:
                break
            dead = procs.dead()
            if dead:
                for name in dead:
                    print(f"\nasyncvla-ros: process {name} exited ({procs.procs[name].returncode}); its log ends:\n"
                          f"{procs.log_tail(name)}", file=sys.stderr)
                rc = 1
                break
            stop.wait(1.0)
            print(f"[{time.monotonic() - start:6.1f} s] {monitor.line()}", flush=True)
    except RuntimeError as err:
        print(f"asyncvla-ros: {err}", file=sys.stderr)
        rc = 1
    finally:
        for spec in specs:
            if spec.lifecycle and not procs.dead():
                try:
                    monitor.transition(spec.name, "deactivate", timeout_s=5.0)
                except RuntimeError:
                    pass
        procs.stop()
        monitor.close()
        print(f"asyncvla-ros: stopped; logs in {log_dir}/", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
