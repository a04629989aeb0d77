"""LeRobot's SO100 leader arm (`lerobot.teleoperators.so_leader.SO100Leader`) as a teleoperation source:
its joint positions, read through LeRobot's own driver and calibration file, in the follower driver's
units (rad; the gripper in `gripper_unit`, the same mapping as `SO100Config`), so that what the teleop
node publishes on `joint_command` is a command the follower can take as it is.

The leader's torque stays off (LeRobot's leader never enables it): a person moves it by hand. Without
its calibration file, connect fails with the `lerobot-calibrate` command to run; the node never
prompts on a keyboard. When the motors hold another calibration than the file, the file's is written
to them (what LeRobot's own prompt does on ENTER).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asyncvla_ros.drivers.base import DriverError
from asyncvla_ros.drivers.so100.calibration import require_calibration_file, sync_motor_calibration
from asyncvla_ros.drivers.so100.config import GRIPPER_UNITS, JOINT_NAMES, SO100Config
from asyncvla_ros.parameters import check_fields, param

logger = logging.getLogger(__name__)


@dataclass
class SO100LeaderConfig:
    port: str = param("/dev/ttyACM1", "serial port of the leader arm's Feetech bus adapter (lerobot-find-port)")
    leader_id: str = param("so100_leader", "LeRobot teleoperator id: the calibration file is <calibration_dir>/<leader_id>.json")
    calibration_dir: str = param("", "directory of LeRobot leader calibration files; empty = LeRobot's default "
                                     "(~/.cache/huggingface/lerobot/calibration/teleoperators/so_leader)")
    rate_hz: float = param(20.0, "leader reads (and joint_command messages) per second, Hz", low=1.0, high=200.0)
    gripper_unit: str = param("rad", "the follower driver's so100.gripper_unit", choices=GRIPPER_UNITS)
    gripper_range_rad: tuple[float, ...] = param((0.0, 1.7), "the follower driver's so100.gripper_range_rad")

    def __post_init__(self) -> None:
        self.gripper_range_rad = tuple(float(v) for v in self.gripper_range_rad)
        check_fields(self)
        # The follower's unit conversions, checked by its own rules.
        self.units = SO100Config(port=self.port or "-", gripper_unit=self.gripper_unit, gripper_range_rad=self.gripper_range_rad)


def calibrate_command(config: SO100LeaderConfig) -> str:
    """The LeRobot CLI call that writes the calibration file this source reads."""
    cmd = f"lerobot-calibrate --teleop.type=so100_leader --teleop.port={config.port} --teleop.id={config.leader_id}"
    if config.calibration_dir:
        cmd += f" --teleop.calibration_dir={config.calibration_dir}"
    return cmd


class SO100LeaderSource:
    joint_names = JOINT_NAMES

    def __init__(self, config: SO100LeaderConfig) -> None:
        self.config = config
        self._leader = None

    def connect(self) -> None:
        """Open the leader's bus with its calibration, torque off.

        Raises:
            DriverError: LeRobot missing, no calibration file, or the bus does not answer (saying what to do).
        """
        try:
            from lerobot.teleoperators.so_leader import SO100Leader, SO100LeaderConfig as LeRobotLeaderConfig
        except ImportError as err:
            raise DriverError(f"the so100_leader source needs LeRobot 0.4.4 (lerobot.teleoperators.so_leader): {err}") from err
        c = self.config
        cal_dir = Path(c.calibration_dir).expanduser() if c.calibration_dir else None
        leader = SO100Leader(LeRobotLeaderConfig(port=c.port, id=c.leader_id, calibration_dir=cal_dir, use_degrees=True))
        require_calibration_file(leader, "so100_leader", calibrate_command(c))
        try:
            leader.bus.connect()
            sync_motor_calibration(leader, "so100_leader")
            leader.configure()  # torque off, position mode: the arm is moved by hand
        except Exception as err:  # LeRobot raises ConnectionError/RuntimeError/OSError here
            if leader.bus.is_connected:
                leader.bus.disconnect(disable_torque=False)
            raise DriverError(f"so100_leader: cannot connect on {c.port}: {str(err).strip()}") from err
        self._leader = leader
        logger.info("so100_leader connected on %s with calibration %s", c.port, leader.calibration_fpath)

    def read(self) -> np.ndarray:
        """The leader's joint positions (JOINT_NAMES order) in the follower's units.

        Raises:
            DriverError: not connected, or the bus read failed.
        """
        if self._leader is None:
            raise DriverError("so100_leader is not connected")
        try:
            action = self._leader.get_action()
        except Exception as err:
            raise DriverError(f"so100_leader: read failed: {str(err).strip()}") from err
        return np.asarray(self.config.units.from_lerobot([action[f"{m}.pos"] for m in JOINT_NAMES]), dtype=np.float64)

    def close(self) -> None:
        if self._leader is not None and self._leader.bus.is_connected:
            self._leader.bus.disconnect(disable_torque=False)
        self._leader = None
