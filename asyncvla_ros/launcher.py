"""`asyncvla-ros launch`: start the node graph without the ROS launch system.

Starts the processes of `launch_graph.graph()` (the same description `robot.launch.py` uses),
configures and activates the lifecycle driver, prints live figures from /diagnostics once a second,
and stops everything cleanly on Ctrl-C, after --duration seconds, or when a process dies (with
`--respawn`, a dead node other than the driver is started again instead, RESPAWN_DELAY_S after its
death, at most RESPAWN_MAX_RETRIES times). Whatever stops the graph, the driver is deactivated
(motion disabled) before any process is signalled. A dead
process's log tail is printed, the last line names it and the exit status is 1. Each process gets
SIGINT_GRACE_S to exit before SIGTERM, then SIGKILL. Child output goes to one log file per process
under --log-dir. The launcher's own DDS calls while stopping, and its process's exit, each get
DDS_STEP_LIMIT_S: one that hangs is left behind with every thread's stack printed, so the launcher
always exits once its nodes have stopped.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from asyncvla_ros.launch_graph import (PACKAGE, RESPAWN_DELAY_S, RESPAWN_MAX_RETRIES, LaunchArgs, NodeSpec, graph,
                                       graph_params_file, rviz_nodes)

SIGINT_GRACE_S = 5.0  # a process gets this long after SIGINT (then SIGTERM, then SIGKILL), as under ros2 launch
POLL_S = 0.1  # how often the launcher looks for a process that died
# The most a DDS call of the launcher's own node may take while the graph stops (a driver's deactivate,
# closing the node), and the process's exit. Once, after a kill -9 of a node, the launcher never exited
# (where it waited was not recorded; Fast DDS's shared-memory transport keeps state that a killed
# process held). A call over the limit is left behind with every thread's stack printed, and the
# launcher goes on.
DDS_STEP_LIMIT_S = 10.0
STARTUP_STEP_LIMIT_S = 70.0  # a lifecycle transition at start (the driver may take a while to connect)


class StepTimeout(RuntimeError):
    """A step of the launcher did not return within its limit (it is left running in its thread)."""


def within(limit_s: float, what: str, fn, *args):
    """`fn(*args)` in a daemon thread, its result or exception returned or raised here.

    Raises:
        StepTimeout: it had not returned after `limit_s`; the stacks of every thread are printed to
            stderr, so a log shows where it waits.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise StepTimeout(f"{what} did not return within {limit_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def executable(spec: NodeSpec) -> str | None:
    """The install space's launcher of `spec` (lib/<package>/<executable> on AMENT_PREFIX_PATH), or None."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "lib" / spec.package / spec.executable
        if prefix and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def node_command(spec: NodeSpec, params_file: Path, overrides_file: Path | None = None) -> list[str]:
    """The command line of one node process: the install space's launcher if present, else `python -m`.

    Args:
        overrides_file: where to write `spec.parameters` as a params file instead of `-p` arguments
            (values a command line cannot carry, such as a URDF).
    """
    exe = executable(spec)
    if exe is None and not spec.module:
        raise FileNotFoundError(f"{spec.package}/{spec.executable} is not installed")
    cmd = [exe] if exe else [sys.executable, "-m", spec.module]
    cmd += list(spec.arguments) + ["--ros-args"]
    if spec.params_file:
        cmd += ["--params-file", str(params_file)]
    if spec.rename:
        cmd += ["-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    if overrides_file is not None and spec.parameters:
        overrides_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": spec.parameters}}))
        cmd += ["--params-file", str(overrides_file)]
    else:
        for key, value in spec.parameters.items():
            cmd += ["-p", f"{key}:={value}"]
    return cmd


class Graph:
    """The running processes of one graph."""

    def __init__(self, specs: list[NodeSpec], params_file: Path, log_dir: Path) -> None:
        self.specs, self.params_file, self.log_dir = specs, params_file, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def labels(self) -> list[str]:
        """A unique name per process (its log file's name), in start order."""
        return [f"{s.namespace.strip('/')}.{s.name}" if s.namespace else s.name for s in self.specs]

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for label in self.labels():
            self._start(label, "w")

    def restart(self, label: str) -> None:
        """Start `label`'s process again (respawn), its output appended to its log."""
        self._start(label, "a")

    def _start(self, label: str, mode: str) -> None:
        spec = self.specs[self.labels().index(label)]
        log = open(self.log_dir / f"{label}.log", mode)
        if mode == "a":
            log.write(f"\n--- asyncvla-ros: {label} restarted ---\n")
            log.flush()
        overrides = None if spec.package == PACKAGE else self.log_dir / f"{label}.params.yaml"
        # Own process group: Ctrl-C in the terminal reaches the launcher only, which then stops
        # the nodes in order (driver last, after it has been deactivated).
        self.procs[label] = subprocess.Popen(node_command(spec, self.params_file, overrides), stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, grace_s: float = SIGINT_GRACE_S) -> dict[str, float]:
        """SIGINT to every process, then SIGTERM and SIGKILL to any still running after `grace_s` each (as
        ros2 launch escalates). Returns the seconds from SIGINT to exit of each process that was still
        running; escalations are printed."""
        t0 = time.monotonic()
        exited: dict[str, float] = {}
        running = [name for name in reversed(list(self.procs)) if self.procs[name].poll() is None]
        for name in running:
            self.procs[name].send_signal(signal.SIGINT)
        for sig in (signal.SIGTERM, signal.SIGKILL, None):
            deadline = time.monotonic() + grace_s
            while running and time.monotonic() < deadline:
                for name in [n for n in running if self.procs[n].poll() is not None]:
                    exited[name] = time.monotonic() - t0
                    running.remove(name)
                time.sleep(0.02)
            if not running or sig is None:
                break
            print(f"asyncvla-ros: {', '.join(running)} still running {grace_s:g} s after "
                  f"{'SIGINT' if sig == signal.SIGTERM else 'SIGTERM'}: sending {sig.name}", file=sys.stderr, flush=True)
            for name in running:
                self.procs[name].send_signal(sig)
        for name in running:  # after SIGKILL: reap
            self.procs[name].wait()
            exited[name] = time.monotonic() - t0
        return exited


STALE_AFTER_S = 3.0  # nodes publish diagnostics at 1 Hz: after three missed, their figures are marked stale


def live_line(status: dict[str, tuple[str, dict, float]], now_s: float) -> str:
    """The launcher's once-a-second line from the latest diagnostics per node, (message, values, monotonic
    receipt time). A node silent for more than STALE_AFTER_S keeps its last figures, marked with how long
    it has been silent, so a dead node's last refresh rate is never read as current."""
    def part(name: str, text) -> str:
        message, values, received = status.get(name, ("", {}, None))
        body = text(values, message)
        if received is not None and now_s - received > STALE_AFTER_S:
            body += f" [{name} silent {now_s - received:.0f} s]"
        return body

    safety = part("safety_filter", lambda v, m: "safety: " + (m or "-"))
    if "teleop" in status:  # a demonstrator instead of the policy (teleop:=...)
        teleop = part("teleop", lambda v, m: f"teleop {v.get('source', '-')}: {m or '-'} | "
                                             + (f"episodes {v['episodes']}, solved {v.get('solved', '-')} | " if "episodes" in v else "")
                                             + f"commands {v.get('commands', '-')}")
        return f"{teleop} | {safety}"
    action = part("action", lambda v, m: f"control {v.get('rate_hz', '-')} Hz (p99 period {v.get('period_p99_ms', '-')} ms) | "
                                         f"plan {v.get('plan_ms_p50', '-')} ms | semantic age {v.get('semantic_age_s', '-')} s")
    semantic = part("semantic", lambda v, m: f"refresh {v.get('refresh_hz', '-')} Hz, encode {v.get('encode_ms_p50', '-')} ms")
    acting = part("action", lambda v, m: f"chunks {v.get('chunks', '-')} | action: {m or '-'}")
    return f"{action}, {semantic} | {acting} | {safety}"


class Monitor:
    """An rclpy node in the launcher: lifecycle transitions and the latest diagnostics."""

    def __init__(self, namespace: str = "") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        rclpy.init(args=[])
        self.rclpy = rclpy
        # In the graph's namespace: its diagnostics and its driver's lifecycle services, by the same names.
        self.node = rclpy.create_node("asyncvla_launcher", namespace=f"/{namespace}" if namespace else "")
        self.status: dict[str, tuple[str, dict]] = {}
        self.node.create_subscription(DiagnosticArray, "diagnostics", self.on_diag, 50)
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def on_diag(self, msg) -> None:
        for s in msg.status:
            self.status[s.name] = (s.message, {kv.key: kv.value for kv in s.values}, time.monotonic())

    def transition(self, node_name: str, label: str, timeout_s: float = 60.0) -> None:
        """Take lifecycle node `node_name` through `label` (configure, activate, deactivate).

        Raises:
            RuntimeError: no live node answered, or the transition failed.
        """
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState, GetState

        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE}
        goals = {"configure": "inactive", "activate": "active", "deactivate": "inactive"}
        deadline = time.monotonic() + timeout_s
        # First a get_state answer, asked again until one comes: discovery can still list the service of a
        # node that has exited (a graph started right after another), and a request sent to it is lost.
        if self._call(GetState, f"{node_name}/get_state", GetState.Request(), deadline, retry_s=1.0) is None:
            raise RuntimeError(f"{node_name}: no lifecycle node answered within {timeout_s} s")
        reply = self._call(ChangeState, f"{node_name}/change_state", ChangeState.Request(transition=Transition(id=ids[label])),
                           deadline)
        if reply is None:  # the request or its reply lost: where did the node get to?
            state = self._call(GetState, f"{node_name}/get_state", GetState.Request(), time.monotonic() + 5.0, retry_s=1.0)
            if state is not None and state.current_state.label == goals[label]:
                return
        if reply is None or not reply.success:
            raise RuntimeError(f"{node_name}: lifecycle transition {label} failed (see its log)")

    def _call(self, srv_type, name: str, request, deadline: float, retry_s: float | None = None):
        """One service call answered by `deadline` (monotonic s), or None; with `retry_s`, the request is
        sent again after each `retry_s` without an answer (only for requests that may be repeated)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
                return None
            while time.monotonic() < deadline:
                future = client.call_async(request)
                give_up = deadline if retry_s is None else min(deadline, time.monotonic() + retry_s)
                while not future.done() and time.monotonic() < give_up:
                    time.sleep(0.02)
                if future.done():
                    return future.result()
                client.remove_pending_request(future)
            return None
        finally:
            self.node.destroy_client(client)

    def line(self) -> str:
        return live_line(dict(self.status), time.monotonic())

    def close(self) -> None:
        self.executor.shutdown()
        # The spin thread must be out of rclpy's C++ wait before the process exits: a daemon thread
        # still inside it at interpreter exit aborts ("terminate called without an active exception").
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros launch", description="Start the AsyncVLA node graph.")
    LaunchArgs.add_options(parser)
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds; 0 = run until Ctrl-C")
    parser.add_argument("--log-dir", default="", help="per-process logs; default runs/launch-<time>")
    opts = parser.parse_args(argv)
    log_dir = Path(opts.log_dir or f"runs/launch-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        args = LaunchArgs.from_options(opts)
        params_file = graph_params_file(args, log_dir)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    specs = graph(args)
    where = f" in namespace /{args.namespace}" if args.namespace else ""
    print(f"asyncvla-ros: {args.robot} graph{where}, params {params_file}, logs in {log_dir}/", flush=True)
    if args.rviz:
        extra, notes = rviz_nodes(args, log_dir)
        specs += extra
        for note in notes:
            print(f"asyncvla-ros: {note}", flush=True)
    monitor = Monitor(args.namespace)
    procs = Graph(specs, params_file, log_dir)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rc, reason, activated = 0, "", []
    # Other packages' nodes (RViz, the robot models it draws) may end cleanly without stopping the graph,
    # as under ros2 launch, where only a non-zero exit stops it.
    foreign = {label: spec.package != PACKAGE for label, spec in zip(procs.labels(), specs)}
    respawn = {label: spec.respawn for label, spec in zip(procs.labels(), specs)}
    restarts = dict.fromkeys(procs.labels(), 0)
    restart_at: dict[str, float] = {}  # dead nodes waiting for their respawn: label -> monotonic time
    finished: set[str] = set()
    try:
        procs.start()
        for label, spec in zip(procs.labels(), specs):
            if spec.lifecycle:
                for step in ("configure", "activate"):
                    within(STARTUP_STEP_LIMIT_S, f"{spec.name} {step}", monitor.transition, spec.name, step)
                activated.append((label, spec.name))  # process label (ns.driver), node name (driver)
        start = time.monotonic()
        next_line = start + 1.0
        while not stop.is_set():
            now = time.monotonic()
            if opts.duration and now - start >= opts.duration:
                break
            for name in [n for n, t in restart_at.items() if now >= t]:
                del restart_at[name]
                procs.restart(name)
            dead = [n for n in procs.dead() if n not in finished and n not in restart_at]
            for name in [n for n in dead if foreign[n] and procs.procs[n].returncode == 0]:
                print(f"asyncvla-ros: {name} ended (exit code 0); the graph goes on", flush=True)  # RViz closed
                finished.add(name)
                dead.remove(name)
            for name in [n for n in dead if respawn[n] and restarts[n] < RESPAWN_MAX_RETRIES]:
                restarts[name] += 1
                restart_at[name] = now + RESPAWN_DELAY_S
                dead.remove(name)
                print(f"\nasyncvla-ros: process {name} exited ({procs.procs[name].returncode}); restarting it in "
                      f"{RESPAWN_DELAY_S:g} s (restart {restarts[name]} of {RESPAWN_MAX_RETRIES}); its log ends:\n"
                      f"{procs.log_tail(name)}", file=sys.stderr, flush=True)
            if dead:
                for name in dead:
                    print(f"\nasyncvla-ros: process {name} exited ({procs.procs[name].returncode}); its log ends:\n"
                          f"{procs.log_tail(name)}", file=sys.stderr, flush=True)
                reason = "process " + ", ".join(f"{n} died (exit code {procs.procs[n].returncode})"
                                                + (f" after {restarts[n]} restarts" if restarts[n] else "") for n in dead)
                rc = 1
                break
            if now >= next_line:
                print(f"[{now - start:6.1f} s] {monitor.line()}", flush=True)
                next_line += 1.0
            stop.wait(POLL_S)
    except RuntimeError as err:
        print(f"asyncvla-ros: {err}", file=sys.stderr)
        reason, rc = str(err), 1
    finally:
        # Motion off before anything stops, whichever process died: a driver left active would follow
        # whatever reaches it until its own process ends.
        try:
            for label, name in activated:
                if procs.procs[label].poll() is not None:
                    continue
                try:
                    within(DDS_STEP_LIMIT_S, f"{name} deactivate", monitor.transition, name, "deactivate", 5.0)
                    print(f"asyncvla-ros: {name} deactivated (motion disabled)", flush=True)
                except RuntimeError as err:  # its process is stopped next, and a driver disables motion on exit
                    print(f"asyncvla-ros: {err}; stopping it", file=sys.stderr, flush=True)
        finally:  # whatever failed above, no node process outlives the launcher
            exits = procs.stop()
        try:
            within(DDS_STEP_LIMIT_S, "closing the launcher's node", monitor.close)
            closed = True
        except StepTimeout as err:  # every node process has stopped: nothing is lost by not waiting
            print(f"asyncvla-ros: {err}; exiting without it", file=sys.stderr, flush=True)
            closed = False
        print("asyncvla-ros: exited after SIGINT: " + ", ".join(f"{n} {t:.1f} s" for n, t in exits.items()), flush=True)
        unclean = {n: procs.procs[n].returncode for n in exits if procs.procs[n].returncode != 0}
        if unclean:  # a node that failed while stopping (its log says how): not a clean stop
            print("asyncvla-ros: not a clean stop: " + ", ".join(f"{n} exited with code {c}" for n, c in unclean.items())
                  + " after SIGINT; see their logs", file=sys.stderr, flush=True)
            rc = rc or 1
            reason = reason or f"{', '.join(unclean)} did not stop cleanly"
        print(f"asyncvla-ros: stopped{' because ' + reason if reason else ''}; logs in {log_dir}/", flush=True)
    if not closed:  # the interpreter's own exit would wait on the same lock
        sys.stderr.flush()
        os._exit(rc)
    # What is left of the launcher's DDS participant goes with the interpreter's exit, which could wait
    # on the same locks: it gets DDS_STEP_LIMIT_S, then the process ends (exit code 1, stacks printed).
    faulthandler.dump_traceback_later(DDS_STEP_LIMIT_S, exit=True)
    return rc

if __name__ == "__main__":
    raise SystemExit(main())
