"""What LeRobot's normalised SO100 ranges mean in this driver's radians, from the arm's calibration file.

A dataset recorded by `lerobot-record` without `use_degrees` holds each body joint in LeRobot's
`RANGE_M100_100` (-100..100 over the calibrated range, sign flipped for `drive_mode` 1) and the gripper
in `RANGE_0_100`. This driver reads the same motors in LeRobot's degrees mode (0 = the middle of the
calibrated range, `(ticks - mid) * 360 / (resolution - 1)`, `drive_mode` not applied) and the gripper's
0-100 % mapped onto `so100.gripper_range_rad`. Per joint the two are one affine map, fixed by the
calibration's `range_min` / `range_max`: `range_lower_rad` / `range_upper_rad` are the radians that
-100 and +100 (gripper 0 and 100) stand for, which is what the action and semantic nodes need to run
such a policy (`control/joint_space.py`). `asyncvla-ros so100-ranges` prints them for a params file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from asyncvla_ros.drivers.base import DriverError
from asyncvla_ros.drivers.so100.config import JOINT_NAMES, SO100Config

logger = logging.getLogger(__name__)

MOTOR_MODEL = "sts3215"  # every SO100 follower motor (LeRobot's SO100Follower)


def require_calibration_file(device, label: str, command: str) -> None:
    """DriverError unless `device` (LeRobot's SO100 follower or leader, before connect) has its calibration
    file, for every SO100 motor; the message gives `command`, the lerobot-calibrate call that writes it."""
    if not device.calibration_fpath.is_file():
        raise DriverError(f"{label}: no LeRobot calibration file {device.calibration_fpath}; calibrate it once with `{command}`")
    if set(device.calibration) != set(JOINT_NAMES):
        raise DriverError(f"{label}: calibration file {device.calibration_fpath} has motors {sorted(device.calibration)}, "
                          f"expected {list(JOINT_NAMES)}; recalibrate with `{command}`")


def sync_motor_calibration(device, label: str) -> None:
    """Write the file's calibration to `device`'s connected motors where they hold another (what LeRobot's
    own prompt does on ENTER; the nodes never prompt)."""
    if not device.bus.is_calibrated:
        logger.warning("%s: the motors hold another calibration than %s; writing the file's to them", label, device.calibration_fpath)
        device.bus.write_calibration(device.calibration)


def read_calibration(path: str | Path) -> dict:
    """LeRobot's calibration file (`lerobot-calibrate` output) as {motor: lerobot.motors.MotorCalibration}.

    Raises:
        ValueError: not JSON, a motor missing, or an entry without LeRobot's fields (naming which).
    """
    from lerobot.motors import MotorCalibration

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a LeRobot calibration file (invalid JSON: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a LeRobot calibration file (expected one object per motor)")
    missing = [name for name in JOINT_NAMES if name not in data]
    if missing:
        raise ValueError(f"{path}: no calibration for motors {missing}; it has {sorted(data)}")
    calibration = {}
    for name in JOINT_NAMES:
        try:
            calibration[name] = MotorCalibration(**data[name])
        except TypeError as err:
            raise ValueError(f"{path}: motor {name!r}: {err} (LeRobot's fields: id, drive_mode, homing_offset, "
                             "range_min, range_max)") from err
        if calibration[name].range_max <= calibration[name].range_min:
            raise ValueError(f"{path}: motor {name!r} has range_max {calibration[name].range_max} <= range_min "
                             f"{calibration[name].range_min}; recalibrate")
    return calibration


def normalised_ranges(calibration: dict, gripper_range: tuple[float, float]) -> tuple[list[float], list[float]]:
    """(range_lower_rad, range_upper_rad) per joint in JOINT_NAMES order for `calibration`
    (read_calibration's) and the driver's gripper range (so100.gripper_range_rad, or (0, 100) for
    gripper_unit percent)."""
    from lerobot.motors.feetech.tables import MODEL_RESOLUTION

    max_res = MODEL_RESOLUTION[MOTOR_MODEL] - 1
    lower, upper = [], []
    for name in JOINT_NAMES[:-1]:
        c = calibration[name]
        half_span = (c.range_max - c.range_min) / 2 * 2 * math.pi / max_res  # rad from the middle to either end
        sign = -1.0 if c.drive_mode else 1.0  # drive_mode 1: LeRobot's -100 is the range's upper end
        lower.append(-sign * half_span)
        upper.append(sign * half_span)
    # The gripper: the driver maps LeRobot's own 0-100 % (drive_mode applied by LeRobot in both) linearly.
    lower.append(float(gripper_range[0]))
    upper.append(float(gripper_range[1]))
    return lower, upper


def main(argv=None) -> int:
    defaults = SO100Config()
    p = argparse.ArgumentParser(prog="asyncvla-ros so100-ranges", description=__doc__.split("\n\n")[0])
    p.add_argument("--calibration", required=True, metavar="FILE",
                   help="LeRobot's calibration file of the arm, e.g. "
                        "~/.cache/huggingface/lerobot/calibration/robots/so_follower/so100_follower.json")
    p.add_argument("--params", metavar="YAML",
                   help="the robot's params file: its driver's so100.gripper_unit and so100.gripper_range_rad are used")
    p.add_argument("--gripper-unit", choices=("rad", "percent"), help=f"the driver's so100.gripper_unit (default "
                   f"{defaults.gripper_unit!r}, or the params file's)")
    p.add_argument("--gripper-range-rad", type=float, nargs=2, metavar=("AT_0", "AT_100"),
                   help=f"the driver's so100.gripper_range_rad (default {defaults.gripper_range_rad}, or the params file's)")
    opts = p.parse_args(argv)
    unit, gripper_range = defaults.gripper_unit, tuple(defaults.gripper_range_rad)
    if opts.params:
        import yaml

        driver = (yaml.safe_load(Path(opts.params).read_text()) or {}).get("driver", {}).get("ros__parameters", {})
        if driver.get("backend") != "so100":
            raise ValueError(f"{opts.params}: its driver section is not backend: so100")
        unit = driver.get("so100.gripper_unit", unit)
        gripper_range = tuple(driver.get("so100.gripper_range_rad", gripper_range))
    unit = opts.gripper_unit or unit
    gripper_range = tuple(opts.gripper_range_rad or gripper_range)
    gripper = (0.0, 100.0) if unit == "percent" else gripper_range
    lower, upper = normalised_ranges(read_calibration(Path(opts.calibration).expanduser()), gripper)
    fmt = lambda values: "[" + ", ".join(f"{v:.6f}" for v in values) + "]"  # noqa: E731
    print(f"# LeRobot's normalised ranges of {opts.calibration} in the so100 driver's units; put both lines under\n"
          f"# the semantic and the action node's ros__parameters (joint order {', '.join(JOINT_NAMES)})\n"
          f"range_lower_rad: {fmt(lower)}\nrange_upper_rad: {fmt(upper)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
