"""The `sim` backend: the embedded MuJoCo SO-101 stepped in real time by the driver node.

The simulator advances one control period per `update()`, holding the latest accepted target (the
current position while disabled, as a position-controlled arm with brakes would). Its pose snapshot
is exposed so cameras in other processes can render the same world.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.drivers.base import DriverBackend, DriverError, JointReading
from asyncvla_ros.parameters import check_fields, param
from asyncvla_ros.sim.config_sim_arm import SimArmConfig
from asyncvla_ros.sim.task import JOINT_NAMES


@dataclass
class SimBackendConfig:
    step_period_s: float = param(0.05, "sim: simulated (and real) time per update, s", low=0.001, high=1.0)
    episode_seed: int = param(0, "sim: scene seed (cube pose, area layout)", low=0, high=2**31 - 1)
    instruction: str = param("", "sim: task instruction; empty draws one from the seed")

    def __post_init__(self) -> None:
        check_fields(self)


class SimBackend(DriverBackend):
    joint_names = JOINT_NAMES

    def __init__(self, config: SimBackendConfig) -> None:
        self.config = config
        self._arm = None
        self._enabled = False
        self._target: np.ndarray | None = None
        self._reading: JointReading | None = None
        self._lock = threading.Lock()

    @property
    def period_s(self) -> float:
        return self.config.step_period_s

    @property
    def arm(self):
        """The SimArm (for its pose snapshot and task state); None before connect()."""
        return self._arm

    def connect(self) -> None:
        from asyncvla_ros.sim.sim_arm import SimArm  # imports MuJoCo

        cfg = SimArmConfig(control_period_s=self.config.step_period_s, cameras=(), instruction=self.config.instruction)
        self._arm = SimArm(cfg)
        self.reset_episode(self.config.episode_seed)

    def reset_episode(self, seed: int) -> str:
        """Start the episode of scene `seed` in place (the arm back at its home pose, a new cube pose and
        area layout), as a person resetting the scene between demonstrations; while active the arm then
        holds its new pose until a command arrives. Returns the episode's instruction.

        Raises:
            DriverError: not connected, or a seed outside [0, 2^31).
        """
        self._require_connected()
        if not 0 <= int(seed) < 2**31:
            raise DriverError(f"sim episode seed must be in [0, 2^31), got {seed}")
        obs = self._arm.reset(seed=int(seed))
        self._store(obs)
        with self._lock:
            self._target = self._reading.positions_rad.copy()
        return self._arm.instruction

    def _store(self, obs) -> None:
        with self._lock:
            self._reading = JointReading(obs.joint_positions_rad.copy(), obs.joint_velocities_rad_s.copy(), time.time_ns())

    def enable(self) -> None:
        self._require_connected()
        with self._lock:
            self._target = self._reading.positions_rad.copy()  # start by holding where it is
            self._enabled = True

    def disable(self) -> None:
        with self._lock:
            self._enabled = False
            if self._reading is not None:
                self._target = self._reading.positions_rad.copy()

    def disconnect(self) -> None:
        self.disable()
        if self._arm is not None:
            self._arm.close()
        self._arm = None
        self._reading = None

    def _require_connected(self) -> None:
        if self._arm is None:
            raise DriverError("sim not connected: configure the driver first")

    def world_snapshot(self):
        """(pose snapshot, instruction) of the simulated world, for cameras rendering it elsewhere."""
        self._require_connected()
        return self._arm.pose_snapshot(), self._arm.instruction

    def read(self) -> JointReading:
        self._require_connected()
        with self._lock:
            return self._reading

    def command(self, positions_rad: np.ndarray) -> None:
        self._require_connected()
        positions = np.asarray(positions_rad, dtype=np.float64)
        lower, upper = self._arm.joint_limits_rad
        if positions.shape != (len(JOINT_NAMES),) or not np.isfinite(positions).all():
            raise DriverError(f"sim command: expected {len(JOINT_NAMES)} finite positions, got {positions}")
        outside = [n for n, p, lo, hi in zip(JOINT_NAMES, positions, lower, upper) if not lo <= p <= hi]
        if outside:
            raise DriverError(f"sim command: joints {outside} outside their limits; refusing the whole command")
        with self._lock:
            if not self._enabled:
                raise DriverError("sim command ignored: driver not active (activate it to enable motion)")
            self._target = positions

    def update(self, now_ns: int) -> None:
        self._require_connected()
        with self._lock:
            target = self._target if self._target is not None else self._reading.positions_rad
        self._store(self._arm.step(target))
