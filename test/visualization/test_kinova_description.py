"""The shipped j2n6s300 URDF: generated from the DH table, and its end effector equals an independent
classic-DH product (written out here, not taken from the generator) for random actuator angles."""

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="needs Pinocchio: pip install pin")

from asyncvla_ros.visualization import kinova_dh  # noqa: E402
from asyncvla_ros.visualization.descriptions import description  # noqa: E402
from asyncvla_ros.visualization.kinematics import UrdfKinematics  # noqa: E402

# Kinova Gen2 JACO2 6-DOF curved wrist, classic DH (alpha, a, d) per joint, and theta from the
# actuator angle Q: typed here from the documentation, independently of the generator module.
_AA = 11 * math.pi / 72
_K = math.sin(_AA) / math.sin(2 * _AA)
_DH = [(math.pi / 2, 0, 0.2755), (math.pi, 0.41, 0), (math.pi / 2, 0, -0.0098),
       (2 * _AA, 0, -(0.2073 + _K * 0.0741)), (2 * _AA, 0, -(_K * 0.0741 + _K * 0.0741)), (math.pi, 0, -(_K * 0.0741 + 0.16))]


def _theta(q):
    return [-q[0], q[1] - math.pi / 2, q[2] + math.pi / 2, q[3], q[4] - math.pi, q[5] + math.pi / 2]


def dh_forward(q) -> np.ndarray:
    t = np.eye(4)
    for (alpha, a, d), th in zip(_DH, _theta(q)):
        ct, st, ca, sa = math.cos(th), math.sin(th), math.cos(alpha), math.sin(alpha)
        t = t @ np.array([[ct, -st * ca, st * sa, a * ct], [st, ct * ca, -ct * sa, a * st], [0, sa, ca, d], [0, 0, 0, 1]])
    return t


def test_shipped_urdf_is_the_generator_output():
    shipped = Path(description("kinova_j2n6s300").urdf_path()).read_text()
    assert shipped == kinova_dh.urdf_from_dh(), "regenerate: python -m asyncvla_ros.visualization.kinova_dh > <the urdf>"


def test_urdf_end_effector_equals_dh_product():
    desc = description("kinova_j2n6s300")
    kin = UrdfKinematics(desc.urdf_path(), desc.ee_frame)
    assert kin.joint_names == desc.joint_names
    rng = np.random.default_rng(0)
    for q in rng.uniform(0.9, 5.3, size=(200, 6)):
        pos, rot = kin.ee_pose(kin.configuration(desc.joint_names, q))
        expected = dh_forward(q)
        np.testing.assert_allclose(pos, expected[:3, 3], atol=1e-9)
        np.testing.assert_allclose(rot, expected[:3, :3], atol=1e-9)


def test_vertical_pose_is_straight_up():
    """Actuators 2 and 3 at 180 deg and 5 at 0: Kinova's upright arm, hand on top, D1+D2+d4b+...
    above the base and within the lateral offsets of the axis."""
    desc = description("kinova_j2n6s300")
    kin = UrdfKinematics(desc.urdf_path(), desc.ee_frame)
    pos, _ = kin.ee_pose(kin.configuration(desc.joint_names, np.radians([180, 180, 180, 0, 0, 0])))
    assert pos[2] == pytest.approx(dh_forward(np.radians([180, 180, 180, 0, 0, 0]))[2, 3])
    assert 1.1 < pos[2] < 1.25 and np.hypot(pos[0], pos[1]) < 0.07
