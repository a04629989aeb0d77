"""The `kinova_gen2_ros` backend: drives an already running Gen2 ROS driver through its topics
(joint velocities in, sensor_msgs/JointState out), with the same 100 Hz tracking loop and limits as
the SDK backend. For users who run Kinova's driver (kinova_driver / kinova-ros2) or a ros2_control
velocity controller instead of letting this package open the arm.

The backend itself holds no ROS objects (the core imports no rclpy): the driver node creates the
publisher and subscription named in the config, passes `send(velocity_rad_s)` to `attach()`, and
feeds every received JointState to `on_joint_state()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from asyncvla_ros.drivers.base import DriverError
from asyncvla_ros.drivers.kinova.config import KinovaRosConfig
from asyncvla_ros.drivers.kinova.streaming import VelocityStreamingBackend


class KinovaRosBackend(VelocityStreamingBackend):
    name = "kinova_gen2_ros"

    def __init__(self, config: KinovaRosConfig) -> None:
        super().__init__(config)
        self._send: Callable[[np.ndarray], None] | None = None
        self._inbox_lock = threading.Lock()
        self._inbox = None  # newest (positions, velocities, stamp_ns) not yet taken by the loop

    def attach(self, send: Callable[[np.ndarray], None]) -> None:
        """The function that publishes one velocity command (rad/s, joint_names order)."""
        self._send = send

    def on_joint_state(self, names, positions, velocities, stamp_ns: int) -> None:
        """A JointState from the running driver (any joint order; extra joints such as fingers ignored).

        Raises:
            DriverError: a joint of joint_names is missing, or a value is not finite.
        """
        index = {n: i for i, n in enumerate(names)}
        missing = [j for j in self.joint_names if j not in index]
        if missing or len(positions) != len(names):
            raise DriverError(f"{self.name}: joint state from the driver lacks {missing or 'positions'} (has {list(names)})")
        pos = np.array([positions[index[j]] for j in self.joint_names], dtype=np.float64)
        vel = None
        if len(velocities) == len(names):
            vel = np.array([velocities[index[j]] for j in self.joint_names], dtype=np.float64)
        if not np.isfinite(pos).all() or (vel is not None and not np.isfinite(vel).all()):
            raise DriverError(f"{self.name}: joint state from the driver has non-finite values")
        with self._inbox_lock:
            self._inbox = (pos, vel, int(stamp_ns))

    def _open(self) -> None:
        if self._send is None:
            raise DriverError(f"{self.name}: no velocity publisher attached (the driver node attaches one)")

    def _close(self) -> None:
        with self._inbox_lock:
            self._inbox = None

    def _read_arm(self):
        with self._inbox_lock:
            got, self._inbox = self._inbox, None
        return got  # None: nothing new this tick; read() reports staleness by age

    def _send_velocity(self, velocity_rad_s: np.ndarray) -> None:
        try:
            self._send(velocity_rad_s)
        except Exception as err:  # the publisher's context went away
            raise DriverError(f"{self.name}: publishing the velocity failed: {err}") from err

    def _halt(self) -> None:
        self._send_velocity(np.zeros(len(self.joint_names)))
