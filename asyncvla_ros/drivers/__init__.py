"""Robot backends behind the driver bridge node (no rclpy, no torch at import).

`make_backend(name, params)` builds one; valid names are listed in BACKENDS. `config_class(name)` is
the dataclass its parameters fill (the driver node declares `<name>.<field>` for each field).
"""

from __future__ import annotations

from asyncvla_ros.drivers.base import DriverBackend, DriverError, JointReading

BACKENDS = ("sim", "so100", "kinova_gen2", "kinova_gen2_ros")


def config_class(name: str):
    """The config dataclass of backend `name` (imports only that backend's config module)."""
    if name == "sim":
        from asyncvla_ros.drivers.sim_backend import SimBackendConfig

        return SimBackendConfig
    if name == "so100":
        from asyncvla_ros.drivers.so100.config import SO100Config

        return SO100Config
    if name == "kinova_gen2":
        from asyncvla_ros.drivers.kinova.config import KinovaSdkConfig

        return KinovaSdkConfig
    if name == "kinova_gen2_ros":
        from asyncvla_ros.drivers.kinova.config import KinovaRosConfig

        return KinovaRosConfig
    raise ValueError(f"unknown driver backend {name!r}; valid backends are {list(BACKENDS)}")


def make_backend(name: str, params: dict) -> DriverBackend:
    """Construct the backend `name` from its parameter dict (no connection is made yet)."""
    config = config_class(name)(**params)
    if name == "sim":
        from asyncvla_ros.drivers.sim_backend import SimBackend

        return SimBackend(config)
    if name == "so100":
        from asyncvla_ros.drivers.so100.backend import SO100Backend

        return SO100Backend(config)
    if name == "kinova_gen2":
        from asyncvla_ros.drivers.kinova.sdk_backend import KinovaSdkBackend

        return KinovaSdkBackend(config)
    from asyncvla_ros.drivers.kinova.ros_backend import KinovaRosBackend

    return KinovaRosBackend(config)


__all__ = ["BACKENDS", "DriverBackend", "DriverError", "JointReading", "config_class", "make_backend"]
