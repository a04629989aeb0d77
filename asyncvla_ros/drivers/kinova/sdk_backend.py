"""The `kinova_gen2` backend: a Gen2 arm through the SDK's C library, streaming joint velocities at
`loop_rate_hz` (see `streaming.py` for the loop, `sdk.py` for the binding).

configure loads the library from `library_path` (a missing file is a clear error here, never at
import), initialises the API, selects the arm and switches it to angular control.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from asyncvla_ros.drivers.base import DriverError
from asyncvla_ros.drivers.kinova.config import KinovaSdkConfig
from asyncvla_ros.drivers.kinova.sdk import KinovaSdk
from asyncvla_ros.drivers.kinova.streaming import VelocityStreamingBackend

logger = logging.getLogger(__name__)


class KinovaSdkBackend(VelocityStreamingBackend):
    name = "kinova_gen2"

    def __init__(self, config: KinovaSdkConfig) -> None:
        super().__init__(config)
        self.sdk: KinovaSdk | None = None

    def _open(self) -> None:
        cfg = self.config
        sdk = KinovaSdk(cfg.library_path, cfg.sdk_actuator_fields, len(cfg.joint_names))
        sdk.init()
        try:
            devices = sdk.devices()
            serials = [d.SerialNumber.decode(errors="replace") for d in devices]
            if not devices:
                raise DriverError("Kinova SDK found no arm (is it powered and plugged in? USB permissions?)")
            if cfg.device_serial:
                chosen = [d for d, s in zip(devices, serials) if s == cfg.device_serial]
                if not chosen:
                    raise DriverError(f"no Kinova arm with serial {cfg.device_serial!r}; found {serials}")
                device = chosen[0]
            elif len(devices) > 1:
                raise DriverError(f"{len(devices)} Kinova arms found {serials}: set kinova_gen2.device_serial to one")
            else:
                device = devices[0]
            sdk.set_active(device)
            sdk.start_angular_control()
            sdk.erase_trajectories()
        except DriverError:
            sdk.lib.CloseAPI()
            raise
        self.sdk = sdk
        logger.info("kinova_gen2: arm %s (%s) through %s", device.SerialNumber.decode(errors="replace"),
                    device.Model.decode(errors="replace"), sdk.path)

    def _close(self) -> None:
        sdk, self.sdk = self.sdk, None
        if sdk is not None:
            sdk.close()

    def _read_arm(self):
        t0 = time.time_ns()
        positions = self.sdk.position()
        t1 = time.time_ns()
        return np.asarray(positions), np.asarray(self.sdk.velocity()), (t0 + t1) // 2

    def _send_velocity(self, velocity_rad_s: np.ndarray) -> None:
        self.sdk.send_velocity(velocity_rad_s)

    def _halt(self) -> None:
        self.sdk.send_velocity(np.zeros(len(self.joint_names)))
        self.sdk.erase_trajectories()
