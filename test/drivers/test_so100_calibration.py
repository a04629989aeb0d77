"""`asyncvla-ros so100-ranges`: LeRobot's normalised SO100 ranges in the so100 driver's radians, checked
against LeRobot's own normalisation (FeetechMotorsBus._normalize) for the same motor ticks."""

import json

import numpy as np
import pytest

from asyncvla_ros.cli import main as cli_main
from asyncvla_ros.control.joint_space import JointCalibrationConfig, JointSpace
from asyncvla_ros.drivers.so100.calibration import normalised_ranges, read_calibration
from asyncvla_ros.policy.config import JointSpaceConfig

from .so100_support import CALIBRATION, JOINTS, require_lerobot, write_calibration

UNITS = ("range_m100_100",) * 5 + ("range_0_100",)
GRIPPER_RANGE = (-0.1645, 1.7353)


def lerobot_bus(calibration):
    """LeRobot's SO100 follower bus (not connected) in one normalisation mode for the body."""
    from lerobot.motors import Motor, MotorNormMode
    from lerobot.motors.feetech import FeetechMotorsBus

    def bus(body_mode):
        motors = {name: Motor(i, "sts3215", body_mode if name != "gripper" else MotorNormMode.RANGE_0_100)
                  for i, name in enumerate(JOINTS, start=1)}
        return FeetechMotorsBus(port="/dev/null", motors=motors, calibration=calibration)

    return bus(MotorNormMode.RANGE_M100_100), bus(MotorNormMode.DEGREES)


@pytest.mark.parametrize("drive_modes", [(0,) * 6, (1, 0, 1, 0, 0, 1)])
def test_a_dataset_in_lerobots_ranges_maps_onto_what_the_driver_reads(tmp_path, drive_modes):
    require_lerobot()
    path = write_calibration(tmp_path)
    data = json.loads(path.read_text())
    for name, mode in zip(JOINTS, drive_modes):
        data[name]["drive_mode"] = mode
    path.write_text(json.dumps(data))
    calibration = read_calibration(path)
    lower, upper = normalised_ranges(calibration, GRIPPER_RANGE)
    js = JointSpace(JointSpaceConfig(JOINTS, UNITS), JOINTS, JointCalibrationConfig(lower, upper))
    ranges_bus, degrees_bus = lerobot_bus(calibration)
    rng = np.random.default_rng(0)
    for _ in range(50):
        ticks = {i: int(rng.integers(lo, hi + 1)) for i, (_, lo, hi) in CALIBRATION.items()}
        dataset = ranges_bus._normalize(ticks)  # what lerobot-record stores without use_degrees
        driver = degrees_bus._normalize(ticks)  # what the so100 driver reads (then deg -> rad, % -> gripper rad)
        driver_rad = [np.radians(driver[i]) for i in range(1, 6)]
        driver_rad.append(GRIPPER_RANGE[0] + driver[6] / 100 * (GRIPPER_RANGE[1] - GRIPPER_RANGE[0]))
        policy_values = [dataset[i] for i in range(1, 7)]
        np.testing.assert_allclose(js.to_robot(np.array(policy_values)), driver_rad, atol=1e-9)
        np.testing.assert_allclose(js.to_policy(np.array(driver_rad)), policy_values, atol=1e-9)


def test_the_command_prints_both_lines_for_the_params_file(tmp_path, capsys):
    require_lerobot()
    import yaml

    path = write_calibration(tmp_path)
    assert cli_main(["so100-ranges", "--calibration", str(path), "--params", "config/so100.yaml"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    lower, upper = normalised_ranges(read_calibration(path), GRIPPER_RANGE)  # config/so100.yaml's gripper range
    np.testing.assert_allclose(printed["range_lower_rad"], lower, atol=1e-6)
    np.testing.assert_allclose(printed["range_upper_rad"], upper, atol=1e-6)
    JointCalibrationConfig(printed["range_lower_rad"], printed["range_upper_rad"])  # valid node parameters
    assert cli_main(["so100-ranges", "--calibration", str(path), "--gripper-unit", "percent"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["range_upper_rad"][-1] == 100.0


@pytest.mark.parametrize("content, match", [
    ("{not json", "invalid JSON"),
    (json.dumps({"shoulder_pan": {}}), r"no calibration for motors \['shoulder_lift'"),
])
def test_a_bad_calibration_file_is_one_clear_error(tmp_path, capsys, content, match):
    require_lerobot()
    path = tmp_path / "arm.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_calibration(path)
    assert cli_main(["so100-ranges", "--calibration", str(path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_an_entry_without_lerobots_fields_is_named(tmp_path):
    require_lerobot()
    path = write_calibration(tmp_path)
    data = json.loads(path.read_text())
    del data["elbow_flex"]["range_max"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="motor 'elbow_flex'.*range_max"):
        read_calibration(path)
