"""Config fields that describe themselves: default, help text (with the unit) and range in one place.

A component's config dataclass declares each field with `param(...)`; the node that runs the component
declares one ROS parameter per field from that description (`nodes/params.declare_config`), the params
YAMLs are checked against the same fields (test/nodes/test_params_described_once.py), and `check_value`
validates a value against its range or choices. Plain Python: no rclpy.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, field


def param(default, help: str, *, low=None, high=None, choices=None, read_only: bool = True):
    """A dataclass field with its description.

    Args:
        default: the default value (tuples for lists).
        help: what it is, with its unit ("..., s").
        low, high: inclusive range of a number (both or neither).
        choices: the valid values of a string.
        read_only: False for a parameter the node applies when it is set at run time.
    """
    if (low is None) != (high is None):
        raise ValueError("param(): give both low and high, or neither")
    metadata = {"help": help, "read_only": read_only}
    if low is not None:
        metadata["range"] = (low, high)
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return field(default=default, metadata=metadata)


def field_default(f: dataclasses.Field):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def field_types(cls) -> dict[str, object]:
    """Field name -> resolved annotation (the modules use `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def check_value(label: str, f: dataclasses.Field, value) -> None:
    """Check `value` against the range or choices field `f` declares.

    Raises:
        ValueError: "<label> must be ..., got <value>".
    """
    if "range" in f.metadata:
        low, high = f.metadata["range"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{label} must be a number in [{low}, {high}], got {value!r}")
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise ValueError(f"{label} must be one of {list(f.metadata['choices'])}, got {value!r}")


def check_fields(obj) -> None:
    """Check every field of the dataclass `obj` that declares a range or choices (`check_value`)."""
    for f in dataclasses.fields(obj):
        check_value(f"{type(obj).__name__}.{f.name}", f, getattr(obj, f.name))
