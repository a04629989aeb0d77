"""JointSpace: robot radians (robot order) <-> the policy's units (its order), exact both ways."""

import math

import numpy as np
import pytest

from asyncvla_ros.control.joint_space import JointCalibrationConfig, JointSpace
from asyncvla_ros.policy.config import JointSpaceConfig

ROBOT = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def test_rad_in_the_robots_order_is_the_identity():
    js = JointSpace(JointSpaceConfig(), ROBOT)
    q = np.linspace(-1, 1, 6)
    assert js.identity and np.array_equal(js.to_policy(q), q) and np.array_equal(js.to_robot(q), q)


def test_lerobot_names_in_another_order_and_degrees_map_exactly_both_ways():
    names = tuple(f"{n}.pos" for n in reversed(ROBOT))
    js = JointSpace(JointSpaceConfig(names, ("deg",) * 6), ROBOT)
    q = np.array([0.1, -0.2, 0.3, -0.4, 0.5, 0.6])
    p = js.to_policy(q)
    np.testing.assert_allclose(p, np.degrees(q[::-1]))
    np.testing.assert_allclose(js.to_robot(p), q, atol=1e-12)
    chunk = np.stack([q, 2 * q])  # (L, J) arrays convert row by row
    np.testing.assert_allclose(js.to_robot(js.to_policy(chunk)), chunk, atol=1e-12)


def test_lerobots_normalised_range_maps_onto_the_calibrated_span():
    lower, upper = (-2.0, -1.5, -1.6, -1.7, -2.8, -0.2), (2.0, 1.5, 1.6, 1.7, 2.8, 1.6)
    units = ("range_m100_100",) * 5 + ("range_0_100",)
    js = JointSpace(JointSpaceConfig(ROBOT, units), ROBOT, JointCalibrationConfig(lower, upper))
    np.testing.assert_allclose(js.to_policy(np.array(lower)), [-100] * 5 + [0])
    np.testing.assert_allclose(js.to_policy(np.array(upper)), [100] * 6)
    q = np.array([0.3, -0.2, 0.1, 0.0, 1.0, 0.7])
    np.testing.assert_allclose(js.to_robot(js.to_policy(q)), q, atol=1e-12)


@pytest.mark.parametrize("policy, calibration, match", [
    (JointSpaceConfig(ROBOT[:5] + ("claw",)), None, "missing \\['claw'\\]"),
    (JointSpaceConfig(ROBOT, ("range_m100_100",) * 6), None, "set range_lower_rad"),
    (JointSpaceConfig(ROBOT, ("range_m100_100",) * 6), JointCalibrationConfig((0.0,) * 6, (0.0,) * 6), "must be finite and differ"),
])
def test_what_cannot_be_resolved_is_an_error_naming_what_to_set(policy, calibration, match):
    with pytest.raises(ValueError, match=match):
        JointSpace(policy, ROBOT, calibration)


def test_unknown_units_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown units \\['percent'\\]"):
        JointSpaceConfig(ROBOT, ("percent",) * 6)
    assert math.isclose(JointSpace(JointSpaceConfig(units=("deg",) * 6), ROBOT).to_policy(np.full(6, math.pi))[0], 180.0)
