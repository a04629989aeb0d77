"""Declaring parameters with descriptions and ranges, and publishing diagnostics, the same way in every node."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from asyncvla_ros.nodes.conversions import to_time


def steady_timer(node: Node, period_s: float, callback):
    """A timer on the steady clock, for what must go on when a replayed bag's /clock pauses or slows:
    diagnostics, watchdogs and liveliness heartbeats (a DDS lease runs on wall time). Control ticks
    stay on the node clock."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def declare(node: Node, name: str, default, description: str, *, low=None, high=None, read_only: bool = True):
    """Declare `name` with a descriptor (description, and a range when low/high are given); return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
        elif isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return node.declare_parameter(name, default, desc).value


def diagnostics(node: Node, stamp_ns: int, name: str, level: int, message: str, values: dict) -> DiagnosticArray:
    """One DiagnosticStatus (level OK/WARN/ERROR) with key/value figures, ready to publish."""
    msg = DiagnosticArray()
    msg.header.stamp = to_time(stamp_ns)
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=node.get_fully_qualified_name())
    status.values = [KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    msg.status = [status]
    return msg


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Rejections:
    """Counts rejected inputs and logs each reason: a new reason at once, a repeat at most once per second.

    (rclpy's own throttling is per call site, so it would hide a second, different reason.)
    """

    def __init__(self, node: Node, repeat_interval_s: float = 1.0) -> None:
        self.node = node
        self.count = 0
        self.interval_ns = int(repeat_interval_s * 1e9)
        self._last_reason = ""
        self._last_logged_ns = 0
        self._suppressed = 0

    def reject(self, reason: str) -> None:
        self.count += 1
        now = time.monotonic_ns()
        if reason != self._last_reason or now - self._last_logged_ns >= self.interval_ns:
            repeats = f" (and {self._suppressed} similar)" if self._suppressed else ""
            self.node.get_logger().error(reason + repeats)
            self._last_reason, self._last_logged_ns, self._suppressed = reason, now, 0
        else:
            self._suppressed += 1


def set_torch_threads(count: int) -> None:
    """Process-wide torch CPU threads, set once from a node's main() (never from a constructor)."""
    if count > 0:
        import torch

        torch.set_num_threads(count)
