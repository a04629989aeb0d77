"""Declaring parameters from config dataclasses, and publishing diagnostics, the same way in every node."""

from __future__ import annotations

import time
from dataclasses import MISSING, fields

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from asyncvla_ros.nodes.conversions import to_time
from asyncvla_ros.parameters import check_value, field_default, field_types

# Annotation -> ROS parameter type, for fields whose default does not show it (an empty tuple).
_ROS_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING,
              tuple[str, ...]: Parameter.Type.STRING_ARRAY, tuple[float, ...]: Parameter.Type.DOUBLE_ARRAY,
              tuple[int, ...]: Parameter.Type.INTEGER_ARRAY, tuple[bool, ...]: Parameter.Type.BOOL_ARRAY}


def declare_config(node: Node, cls, prefix: str = "", **fixed):
    """Declare a ROS parameter `<prefix><field>` for every field of the config dataclass `cls` (see
    `declare_fields`) and build `cls` from their values and `fixed` (fields the node sets itself, e.g.
    from its policy, which are not declared).

    Raises:
        ValueError: as `declare_fields`, or the config's own checks refused the values (naming the node).
    """
    values = declare_fields(node, cls, prefix, skip=tuple(fixed))
    try:
        return cls(**values, **fixed)
    except ValueError as err:
        raise ValueError(f"{node.get_name()} parameters: {err}") from None


def declare_fields(node: Node, cls, prefix: str = "", skip: tuple[str, ...] = ()) -> dict:
    """Declare `<prefix><field>` for every field of `cls` but `skip`: the default, description, range and
    choices come from the field's `parameters.param` metadata. Returns {field: value}, checked against the
    range and choices and converted to the field's type (numbers either way a YAML writes them: 20 for a
    float field is 20.0; lists become tuples).

    Raises:
        ValueError: a value of the wrong type, or outside its range or choices, naming the parameter.
    """
    types = field_types(cls)
    values = {}
    for f in fields(cls):
        if f.name in skip or not f.init:
            continue
        name = prefix + f.name
        kind, default = types[f.name], field_default(f)
        desc = ParameterDescriptor(description=f.metadata.get("help", f.name), read_only=f.metadata.get("read_only", True))
        low, high = f.metadata.get("range", (None, None))
        constraints = []
        if low is not None:
            constraints.append(f"in [{low}, {high}]")
        if "choices" in f.metadata:
            constraints.append("one of " + ", ".join(map(str, f.metadata["choices"])))
        desc.additional_constraints = "; ".join(constraints)
        if kind in (float, tuple[float, ...], str):
            # An integer in the YAML or on the command line is converted below, not refused by rclpy: 20 for
            # a float, and device:=1 for a string (ROS reads an unquoted 1 as an integer).
            desc.dynamic_typing = True
        elif low is not None and kind is int:
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        try:
            if default is MISSING or (isinstance(default, tuple) and not default):  # no default to take the type from
                value = node.declare_parameter(name, None if desc.dynamic_typing else _ROS_TYPES[kind], desc).value  # None when not set
            else:
                value = node.declare_parameter(name, list(default) if isinstance(default, tuple) else default, desc).value
        except ParameterException as err:
            raise ValueError(f"parameter {name}: {err}") from None
        if value is None:
            if default is MISSING:
                raise ValueError(f"parameter {name} must be set: {desc.description}")
            value = default
        value = _coerce(name, kind, value)
        check_value(f"parameter {name}", f, value)  # also for configs that check nothing themselves
        values[f.name] = value
    return values


def _coerce(name: str, kind, value):
    """The parameter's value as the field's type (lists become tuples)."""
    scalar = {tuple[float, ...]: float, tuple[str, ...]: str, tuple[int, ...]: int, tuple[bool, ...]: bool}.get(kind)
    if scalar is not None:
        items = value if isinstance(value, (list, tuple)) else None
        if items is None or not all(_fits(scalar, v) for v in items):
            raise ValueError(f"parameter {name} must be a list of {scalar.__name__}, got {value!r}")
        return tuple(scalar(v) for v in items)
    if not _fits(kind, value):
        raise ValueError(f"parameter {name} must be a {getattr(kind, '__name__', kind)}, got {value!r}")
    return kind(value)


def _fits(kind, value) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def steady_timer(node: Node, period_s: float, callback):
    """A timer on the steady clock, for what must go on when a replayed bag's /clock pauses or slows:
    diagnostics, watchdogs and liveliness heartbeats (a DDS lease runs on wall time). Control ticks
    stay on the node clock."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


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

    def reject(self, reason: str, expected: bool = False) -> None:
        """Count and log one rejection; `expected`: a warning, not an error (input refused by design,
        e.g. commands reaching a driver an operator deactivated)."""
        self.count += 1
        now = time.monotonic_ns()
        if reason != self._last_reason or now - self._last_logged_ns >= self.interval_ns:
            repeats = f" (and {self._suppressed} similar)" if self._suppressed else ""
            # Two call sites: rclpy refuses one call site logging at two severities.
            if expected:
                self.node.get_logger().warning(reason + repeats)
            else:
                self.node.get_logger().error(reason + repeats)
            self._last_reason, self._last_logged_ns, self._suppressed = reason, now, 0
        else:
            self._suppressed += 1


def set_torch_threads(count: int) -> None:
    """Process-wide torch CPU threads, set once from a node's main() (never from a constructor)."""
    if count > 0:
        import torch

        torch.set_num_threads(count)
