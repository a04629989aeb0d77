"""Robot backends behind the driver bridge node (no rclpy, no torch).

`make_backend(name, params)` builds one; valid names are listed in BACKENDS.
"""

from __future__ import annotations

from asyncvla_ros.drivers.base import DriverBackend, DriverError, JointReading

BACKENDS = ("sim",)


def make_backend(name: str, params: dict) -> DriverBackend:
    """Construct the backend `name` from its parameter dict (no connection is made yet)."""
    if name == "sim":
        from asyncvla_ros.drivers.sim_backend import SimBackend, SimBackendConfig

        return SimBackend(SimBackendConfig(**params))
    raise ValueError(f"unknown driver backend {name!r}; valid backends are {list(BACKENDS)}")


__all__ = ["BACKENDS", "DriverBackend", "DriverError", "JointReading", "make_backend"]
