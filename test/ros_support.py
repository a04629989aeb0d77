"""Helpers for tests that run real nodes over real rclpy on loopback.

They need the colcon install space on the environment (scripts/run_tests.sh sources it); without it
the node tests are skipped with that reason.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def require_ros_messages():
    try:
        import asyncvla_ros.msg  # noqa: F401
        import rclpy  # noqa: F401
    except ImportError as err:
        pytest.skip(f"needs rclpy and the colcon install space (source .ws/install/setup.bash): {err}")


class NodeProcess:
    """One node process started like the launcher starts it; output to a log file."""

    def __init__(self, spec, params_file: Path, log_dir: Path, extra_params: dict | None = None,
                 ros_args: tuple[str, ...] = ()) -> None:
        from asyncvla_ros.launcher import node_command

        if extra_params:
            spec.parameters = {**spec.parameters, **extra_params}
        self.name = spec.name
        self.log_path = log_dir / f"{spec.name}.log"
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(node_command(spec, params_file) + list(ros_args), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = 2, timeout_s: float = 10.0) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


RECORD_DEPTH = 2000  # Probe.record's reader depth: 40 s of the busiest graph topic (joint states, 50 Hz)


class Probe:
    """An rclpy node in the test process that records topics, publishes and calls services."""

    def __init__(self, name: str = "test_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        if not rclpy.ok():
            rclpy.init(args=[])
        self.node = rclpy.create_node(name)
        self.received: dict[str, list[tuple[float, object]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def record(self, msg_type, topic: str, qos=None) -> None:
        """Keep every `topic` message with its receipt time. The default depth holds RECORD_DEPTH messages
        in the reader: DDS's own threads fill it, so a stall of this (test) process, which a loaded CI
        machine has shown for ~5 s, delays the records but loses none."""
        def callback(msg, topic=topic):
            with self.lock:
                self.received[topic].append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, callback, RECORD_DEPTH if qos is None else qos)

    def messages(self, topic: str, since: float = 0.0) -> list:
        with self.lock:
            return [m for t, m in self.received[topic] if t >= since]

    def stamped(self, topic: str) -> list[tuple[float, object]]:
        with self.lock:
            return list(self.received[topic])

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0, resend_after_s: float | None = None):
        """The first reply to `request`. `resend_after_s`: send it again when no reply came that long. A
        client sees a server as ready once its request reaches the server's reader, which may not yet have
        matched the client back: a request sent then is lost (volatile QoS), and on a loaded machine
        discovery can take seconds. The first reply wins, so a resent request is for idempotent calls or
        ones whose repeat is refused (a lifecycle transition)."""
        client = self.node.create_client(srv_type, name)
        deadline = time.monotonic() + timeout_s
        while not client.service_is_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not client.service_is_ready():
            known = [n for n, _ in self.node.get_service_names_and_types()]
            raise AssertionError(f"service {name} not available; the graph has {known}")
        futures, sent = [client.call_async(request)], time.monotonic()
        while time.monotonic() < deadline:
            done = [f for f in futures if f.done()]
            if done:
                return done[0].result()
            if resend_after_s and time.monotonic() - sent > resend_after_s:
                futures.append(client.call_async(request))
                sent = time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for reply from {name}")

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


# The slowest command rate the graph tests accept, as a share of the control rate. Below it the graph is
# broken, not slow: a shared 2-core CI machine has run the whole sim graph at 14 Hz of a 20 Hz loop
# (the tiny policy's plan alone took 35 ms p50 there), and how fast a machine is belongs in
# `asyncvla-ros bench-graph`, not in pass/fail.
MIN_RATE_SHARE = 0.5


class LaunchedGraph:
    """Node processes of a graph, every one its own process, with the driver configured and active and
    chunks and commands flowing; a probe records what the tests read. A graph that fails to come up is
    stopped in `start`: its nodes would otherwise answer the next test's graph in the same domain."""

    probe: Probe

    def start(self, specs, params_file: Path, log_dir: Path, within_s: float) -> None:
        from .nodes.test_driver_node import transition

        self.procs: dict[str, NodeProcess] = {}
        try:
            for spec in specs:
                self.procs[spec.name] = NodeProcess(spec, params_file, log_dir)
            assert transition(self.probe, "configure"), self.logs()
            assert transition(self.probe, "activate"), self.logs()
            # Planned chunks, not only commands: the action node also commands (holds) before semantics arrive.
            self.probe.wait_for(lambda: len(self.probe.messages("action_chunk")) > 20
                                and len(self.probe.messages("safe_joint_command")) > 20, within_s,
                                "chunks and commands reaching the driver")
        except BaseException:
            self.close()
            raise

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.output()[-3000:]}" for n, p in self.procs.items())

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.probe.close()


def command_flow(probe: Probe, since: float, until: float) -> dict:
    """What became of the commands the action node sent between `since` and `until` (monotonic, as the
    probe stamps receipts; `probe` records joint_command, safe_joint_command and safety_events): each
    either reached the driver (the filter's answer carries the command's stamp) or was refused with a
    safety event. Returns the counts; `lost` are neither."""
    from asyncvla_ros.nodes.conversions import from_time

    sent = {from_time(m.header.stamp) for t, m in probe.stamped("joint_command") if since <= t < until}
    passed = {from_time(m.header.stamp) for m in probe.messages("safe_joint_command", since)}
    events = probe.messages("safety_events", since)
    before = [m.refusal_count for t, m in probe.stamped("safety_events") if t < since]
    refused = (max(m.refusal_count for m in events) - (before[-1] if before else 0)) if events else 0
    return {"sent": len(sent), "passed": len(sent & passed), "refused": refused, "lost": len(sent - passed) - refused}
