"""Configuration of the SO100 backend. Every field maps to the ROS parameter `so100.<field>`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from asyncvla_ros.drivers.hardware import check_limits_config, per_joint

# LeRobot's SO100 follower motor names (ids 1..6), in bus order; they are the joint names too.
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
GRIPPER_UNITS = ("rad", "percent")


@dataclass
class SO100Config:
    port: str = field(default="/dev/ttyACM0", metadata={"help": "serial port of the arm's Feetech bus adapter (lerobot-find-port)"})
    robot_id: str = field(default="so100_follower", metadata={"help": "LeRobot robot id: the calibration file is <calibration_dir>/<robot_id>.json"})
    calibration_dir: str = field(default="", metadata={"help": "directory of LeRobot calibration files; empty = LeRobot's default (~/.cache/huggingface/lerobot/calibration/robots/so_follower)"})
    state_rate_hz: float = field(default=50.0, metadata={"help": "bus reads and joint_states per second, Hz", "range": (1.0, 500.0)})
    gripper_unit: str = field(default="rad", metadata={"help": "unit of the gripper joint: 'percent' = LeRobot's 0-100 of the calibrated range; 'rad' = that range mapped linearly onto gripper_range_rad"})
    gripper_range_rad: tuple[float, ...] = field(default=(0.0, 1.7), metadata={"help": "gripper_unit rad: the angles (rad) at 0 % and at 100 % of the calibrated gripper range"})
    position_lower: tuple[float, ...] = field(default=(-1.9, -1.7, -1.7, -1.65, -2.7, 0.0), metadata={"help": "per joint lower limit: rad, the gripper in gripper_unit; commands outside are refused whole"})
    position_upper: tuple[float, ...] = field(default=(1.9, 1.7, 1.7, 1.65, 2.8, 1.7), metadata={"help": "per joint upper limit: rad, the gripper in gripper_unit"})
    max_relative_target: tuple[float, ...] = field(default=(0.15, 0.15, 0.15, 0.15, 0.2, 0.3), metadata={"help": "per joint largest |goal - present| written in one command (LeRobot's max_relative_target): rad, the gripper in gripper_unit"})
    max_consecutive_failures: int = field(default=3, metadata={"help": "failed bus transactions in a row after which the link counts as lost (no further writes)", "range": (1, 100)})
    stale_after_s: float = field(default=0.5, metadata={"help": "read() fails when the last good bus read is older than this, s", "range": (0.01, 10.0)})

    def __post_init__(self) -> None:
        n = len(JOINT_NAMES)
        if not self.port:
            raise ValueError("SO100Config.port must name the serial port (e.g. /dev/ttyACM0; find it with lerobot-find-port)")
        if not self.robot_id:
            raise ValueError("SO100Config.robot_id must not be empty (it names the calibration file)")
        if not 1.0 <= self.state_rate_hz <= 500.0:
            raise ValueError(f"SO100Config.state_rate_hz must be in [1, 500] Hz, got {self.state_rate_hz!r}")
        if self.gripper_unit not in GRIPPER_UNITS:
            raise ValueError(f"SO100Config.gripper_unit {self.gripper_unit!r} unknown; valid units are {list(GRIPPER_UNITS)}")
        self.gripper_range_rad = per_joint("SO100Config", "gripper_range_rad", self.gripper_range_rad, 2)
        if self.gripper_range_rad[0] == self.gripper_range_rad[1]:
            raise ValueError(f"SO100Config.gripper_range_rad needs two different angles, got {self.gripper_range_rad!r}")
        self.position_lower = per_joint("SO100Config", "position_lower", self.position_lower, n)
        self.position_upper = per_joint("SO100Config", "position_upper", self.position_upper, n)
        check_limits_config("SO100Config", JOINT_NAMES, self.position_lower, self.position_upper)
        self.max_relative_target = per_joint("SO100Config", "max_relative_target", self.max_relative_target, n, positive=True)
        if not 1 <= self.max_consecutive_failures <= 100:
            raise ValueError(f"SO100Config.max_consecutive_failures must be in [1, 100], got {self.max_consecutive_failures!r}")
        if not 0.01 <= self.stale_after_s <= 10.0:
            raise ValueError(f"SO100Config.stale_after_s must be in [0.01, 10] s, got {self.stale_after_s!r}")

    # -- unit conversions between this package (rad; gripper in gripper_unit) and LeRobot (deg; gripper %) --

    def to_lerobot(self, values) -> list[float]:
        """Joint values in this package's units -> LeRobot's (body degrees, gripper percent)."""
        out = [math.degrees(v) for v in values[:-1]]
        return out + [self._gripper_to_percent(values[-1])]

    def from_lerobot(self, values) -> list[float]:
        """LeRobot's joint values (body degrees, gripper percent) -> this package's units."""
        out = [math.radians(v) for v in values[:-1]]
        return out + [self._gripper_from_percent(values[-1])]

    def relative_target_lerobot(self) -> dict[str, float]:
        """max_relative_target per motor in LeRobot's units (a span, so no offset for the gripper)."""
        body = [math.degrees(v) for v in self.max_relative_target[:-1]]
        grip = self.max_relative_target[-1]
        if self.gripper_unit == "rad":
            lo, hi = self.gripper_range_rad
            grip = grip * 100.0 / abs(hi - lo)
        return dict(zip(JOINT_NAMES, body + [grip]))

    def _gripper_to_percent(self, v: float) -> float:
        if self.gripper_unit == "percent":
            return float(v)
        lo, hi = self.gripper_range_rad
        return (v - lo) / (hi - lo) * 100.0

    def _gripper_from_percent(self, p: float) -> float:
        if self.gripper_unit == "percent":
            return float(p)
        lo, hi = self.gripper_range_rad
        return lo + p / 100.0 * (hi - lo)
