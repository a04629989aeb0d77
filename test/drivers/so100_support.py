"""An emulated SO100 (six STS3215 on a pty) with a LeRobot calibration file, shared by the SO100 tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .feetech_bus import EmulatedFeetechBus

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# (homing_offset, range_min, range_max) per motor, as `lerobot-calibrate` would have recorded them.
CALIBRATION = {1: (-37, 780, 3320), 2: (112, 820, 3250), 3: (5, 900, 3100), 4: (-1200, 830, 3180),
               5: (0, 0, 4095), 6: (64, 2010, 3390)}
ROBOT_ID = "emulated_so100"


def require_lerobot() -> None:
    pytest.importorskip("scservo_sdk", reason="needs feetech-servo-sdk (LeRobot's Feetech dependency)")
    try:
        import lerobot.robots.so_follower  # noqa: F401
    except ImportError as err:
        pytest.skip(f"needs LeRobot 0.4.4 with its robot dependencies: {err}")


def write_calibration(directory: Path, calibration=CALIBRATION) -> Path:
    """A calibration file in LeRobot's format (<dir>/<id>.json, one entry per motor name)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {name: {"id": i, "drive_mode": 0, "homing_offset": calibration[i][0], "range_min": calibration[i][1],
                   "range_max": calibration[i][2]} for i, name in enumerate(JOINTS, start=1)}
    path = directory / f"{ROBOT_ID}.json"
    path.write_text(json.dumps(data, indent=4))
    return path


def emulated_arm(follow_rate_ticks_s: float = 0.0) -> EmulatedFeetechBus:
    """Six servos already holding CALIBRATION, each at the middle of its range."""
    bus = EmulatedFeetechBus(follow_rate_ticks_s=follow_rate_ticks_s)
    bus.set_calibration(CALIBRATION)
    for i, (_, lo, hi) in CALIBRATION.items():
        bus.set_reg(i, 56, (lo + hi) // 2, 2)
    return bus


# LeRobot's normalisation (MotorNormMode.DEGREES for the body, RANGE_0_100 for the gripper), written out
# here so the tests check the driver against numbers computed independently of it.

def ticks_to_rad(motor_id: int, ticks: int) -> float:
    _, lo, hi = CALIBRATION[motor_id]
    return math.radians((ticks - (lo + hi) / 2) * 360 / 4095)


def rad_to_ticks(motor_id: int, rad: float) -> int:
    _, lo, hi = CALIBRATION[motor_id]
    return int(math.degrees(rad) * 4095 / 360 + (lo + hi) / 2)


def gripper_ticks_to_unit(ticks: int, lo_rad: float, hi_rad: float) -> float:
    _, lo, hi = CALIBRATION[6]
    percent = (min(hi, max(lo, ticks)) - lo) / (hi - lo) * 100
    return lo_rad + percent / 100 * (hi_rad - lo_rad)


def gripper_unit_to_ticks(value: float, lo_rad: float, hi_rad: float) -> int:
    _, lo, hi = CALIBRATION[6]
    percent = min(100.0, max(0.0, (value - lo_rad) / (hi_rad - lo_rad) * 100))
    return int(percent / 100 * (hi - lo) + lo)
