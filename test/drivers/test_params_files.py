"""config/so100.yaml and config/kinova_gen2.yaml against the code they configure (no ROS, no hardware):
every driver key is a field of its backend's config and builds a valid one, the safety filter's limits
lie inside the driver's (so a command the filter passes is never refused by the driver), and every
section names the same joints. Bad values name the field."""

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from asyncvla_ros.drivers import BACKENDS, config_class, make_backend
from asyncvla_ros.launch_graph import LaunchArgs, params_file_for

CONFIG = Path(__file__).resolve().parents[2] / "config"


def driver_params(path: Path, backend: str) -> dict:
    section = yaml.safe_load(path.read_text())["driver"]["ros__parameters"]
    prefix = backend + "."
    return {k[len(prefix):]: v for k, v in section.items() if k.startswith(prefix)}


def test_robot_argument_selects_the_robots_params_file():
    for robot in ("so100", "kinova_gen2"):
        assert params_file_for(LaunchArgs(robot=robot)).name == f"{robot}.yaml"


KINOVA = ["kinova_gen2", "kinova_gen2_ros"]


@pytest.mark.parametrize("name, backends", [("so100", ["so100"]), ("kinova_gen2", KINOVA),
                                            ("kinova_gen2_j2n6s200", KINOVA), ("kinova_gen2_j2s7s300", KINOVA)])
def test_params_file_builds_each_backends_config(name, backends):
    path = CONFIG / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["driver"]["ros__parameters"]["backend"] == backends[0]
    known_prefixes = {b + "." for b in BACKENDS}
    for key in doc["driver"]["ros__parameters"]:
        if "." in key:
            assert key.split(".")[0] + "." in known_prefixes, key
    for backend in backends:
        params = driver_params(path, backend)
        names = {f.name for f in fields(config_class(backend))}
        assert set(params) <= names, set(params) - names  # a typo would be silently ignored by ROS
        config = config_class(backend)(**params)
        joints = getattr(config, "joint_names", None) or ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
        safety = doc["safety_filter"]["ros__parameters"]
        assert list(safety["joint_names"]) == list(joints)
        assert list(doc["action"]["ros__parameters"]["joint_names"]) == list(joints)
        assert list(doc["semantic"]["ros__parameters"]["joint_names"]) == list(joints)
        assert np.all(np.asarray(safety["position_lower_rad"]) >= np.asarray(config.position_lower))
        assert np.all(np.asarray(safety["position_upper_rad"]) <= np.asarray(config.position_upper))


def test_kinova_params_carry_the_papers_speed_limits():
    params = driver_params(CONFIG / "kinova_gen2.yaml", "kinova_gen2")
    np.testing.assert_allclose(params["speed_limit_rad_s"], np.radians([36, 36, 36, 48, 48, 48]), atol=1e-3)
    assert params["loop_rate_hz"] == 100.0


@pytest.mark.parametrize("backend, params, match", [
    ("so100", {"gripper_unit": "deg"}, r"gripper_unit 'deg' unknown; valid units are \['rad', 'percent'\]"),
    ("so100", {"position_lower": [0.0] * 5}, r"position_lower needs 6 finite values"),
    ("so100", {"max_relative_target": [0.1, 0.1, 0.1, 0.1, 0.1, 0.0]}, r"max_relative_target must be > 0"),
    ("so100", {"position_lower": [2.0] * 6}, r"joint 'shoulder_pan' has lower limit 2.0 >= upper limit"),
    ("kinova_gen2", {"speed_limit_rad_s": [0.6, 0.6, float("nan"), 0.8, 0.8, 0.8]}, r"speed_limit_rad_s needs 6 finite"),
    ("kinova_gen2", {"sdk_actuator_fields": 5}, r"sdk_actuator_fields must be 6 or 7"),
    ("kinova_gen2", {"loop_rate_hz": 5.0}, r"loop_rate_hz must be in \[10, 500\]"),
    ("kinova_gen2_ros", {"velocity_type": "trajectory_msgs/msg/JointTrajectory"}, r"velocity_type .* unknown"),
])
def test_bad_values_name_the_field(backend, params, match):
    with pytest.raises(ValueError, match=match):
        make_backend(backend, params)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid backends are \['sim', 'so100', 'kinova_gen2', 'kinova_gen2_ros'\]"):
        make_backend("ur5", {})


def test_hardware_backends_import_without_torch_lerobot_or_the_sdk():
    import subprocess
    import sys

    code = ("import sys; from asyncvla_ros.drivers import make_backend; "
            "make_backend('so100', {}); make_backend('kinova_gen2', {'library_path': '/nowhere.so'}); "
            "make_backend('kinova_gen2_ros', {}); "
            "print(sorted(m for m in ('torch', 'lerobot', 'rclpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_so100_unit_conversions_round_trip_in_both_gripper_units():
    from asyncvla_ros.drivers.so100.config import SO100Config

    rad = SO100Config(gripper_range_rad=(-0.2, 1.8))
    values = [0.1, -0.5, 1.2, 0.0, 2.0, 0.8]
    lerobot = rad.to_lerobot(values)
    np.testing.assert_allclose(lerobot[:5], np.degrees(values[:5]))
    assert lerobot[5] == pytest.approx(50.0)  # 0.8 rad is the middle of [-0.2, 1.8]
    np.testing.assert_allclose(rad.from_lerobot(lerobot), values)
    assert rad.relative_target_lerobot()["gripper"] == pytest.approx(0.3 * 100 / 2.0)
    percent = SO100Config(gripper_unit="percent", position_lower=(-1.9, -1.7, -1.7, -1.65, -2.7, 0.0),
                          position_upper=(1.9, 1.7, 1.7, 1.65, 2.8, 100.0), max_relative_target=(0.1,) * 5 + (10.0,))
    assert percent.to_lerobot(values[:5] + [42.0])[5] == 42.0
    assert percent.relative_target_lerobot()["gripper"] == 10.0
    assert percent.relative_target_lerobot()["shoulder_pan"] == pytest.approx(np.degrees(0.1))


def test_kinova_soft_limits_lie_inside_the_actuator_specification():
    # Kinova's Gen2 specification: J2 47..313 deg, J3 19..341 deg (6-DOF); J2 47..313, J4 30..330, J6 65..295 (7-DOF).
    spec = {"kinova_gen2": {1: (47, 313), 2: (19, 341)}, "kinova_gen2_j2n6s200": {1: (47, 313), 2: (19, 341)},
            "kinova_gen2_j2s7s300": {1: (47, 313), 3: (30, 330), 5: (65, 295)}}
    for name, limited in spec.items():
        params = driver_params(CONFIG / f"{name}.yaml", "kinova_gen2")
        for j, (lo, hi) in limited.items():
            assert np.radians(lo) <= params["position_lower"][j] < params["position_upper"][j] <= np.radians(hi), (name, j)
