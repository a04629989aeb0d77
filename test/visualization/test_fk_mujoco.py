"""Marker positions against MuJoCo: the SO-101 end effector from the URDF (Pinocchio, through the
chunk view and the RViz markers) equals MuJoCo's ``gripperframe`` site on the package's own MJCF,
an independent model file and implementation, within 1 mm."""

import numpy as np
import pytest

from test.sim._support import skip_without_sim

skip_without_sim()
pytest.importorskip("pinocchio", reason="needs Pinocchio: pip install pin")

from asyncvla_ros.sim import assets  # noqa: E402
from asyncvla_ros.sim._mujoco import mujoco  # noqa: E402
from asyncvla_ros.visualization.chunk_view import ChunkVisualizer  # noqa: E402
from asyncvla_ros.visualization.descriptions import SO101_JOINTS, description  # noqa: E402

TOLERANCE_M = 1e-3
CHUNKS, HORIZON = 40, 10  # 400 poses


@pytest.fixture(scope="module")
def mujoco_arm():
    model = mujoco.MjModel.from_xml_path(str(assets.so101_asset_dir() / assets.ROBOT_XML))
    return model, mujoco.MjData(model)


def mujoco_ee(model, data, q: np.ndarray) -> np.ndarray:
    """World position of the MJCF site ``gripperframe`` (the robot base is at the world origin)."""
    for name, value in zip(SO101_JOINTS, q):
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    return data.site_xpos[model.site("gripperframe").id].copy()


def random_chunks(model, rng):
    low = np.array([model.joint(n).range[0] for n in SO101_JOINTS])
    high = np.array([model.joint(n).range[1] for n in SO101_JOINTS])
    return rng.uniform(low, high, size=(CHUNKS, HORIZON, len(SO101_JOINTS)))


def test_view_positions_match_mujoco(mujoco_arm):
    model, data = mujoco_arm
    visualizer = ChunkVisualizer(description("so101"))
    errors = []
    for chunk in random_chunks(model, np.random.default_rng(0)):
        view = visualizer.view(SO101_JOINTS, chunk, chunk[::-1], np.full(HORIZON, 0.7), np.zeros(HORIZON, bool), 0.05)
        expected = np.array([mujoco_ee(model, data, q) for q in chunk])
        errors.append(np.linalg.norm(view.final_positions - expected, axis=1))
        expected_sfm = np.array([mujoco_ee(model, data, q) for q in chunk[::-1]])
        errors.append(np.linalg.norm(view.sfm_positions - expected_sfm, axis=1))
    errors = np.concatenate(errors)
    assert errors.size == 2 * CHUNKS * HORIZON
    assert errors.max() < TOLERANCE_M, f"max FK error {errors.max() * 1e3:.4f} mm"
    # The poses are spread: the check is not passing on one folded pose.
    assert np.ptp(view.final_positions, axis=0).max() > 0.1


def test_marker_positions_match_mujoco(mujoco_arm):
    pytest.importorskip("visualization_msgs", reason="needs the ROS 2 message wheels")
    from builtin_interfaces.msg import Time

    from asyncvla_ros.nodes.chunk_markers import marker_array

    model, data = mujoco_arm
    visualizer = ChunkVisualizer(description("so101"))
    worst = 0.0
    for chunk in random_chunks(model, np.random.default_rng(1))[:10]:
        view = visualizer.view(SO101_JOINTS, chunk, chunk, np.linspace(0.0, 1.0, HORIZON), np.zeros(HORIZON, bool), 0.05)
        markers = marker_array(view, "base_link", Time(sec=1))
        spheres = sorted((m for m in markers.markers if m.ns == "step_confidence"), key=lambda m: m.id)
        assert [m.id for m in spheres] == list(range(HORIZON))
        for marker, q in zip(spheres, chunk):
            p = marker.pose.position
            worst = max(worst, float(np.linalg.norm(np.array([p.x, p.y, p.z]) - mujoco_ee(model, data, q))))
        line = next(m for m in markers.markers if m.ns == "final_path")
        for point, q in zip(line.points, chunk):
            worst = max(worst, float(np.linalg.norm(np.array([point.x, point.y, point.z]) - mujoco_ee(model, data, q))))
    assert worst < TOLERANCE_M, f"max marker error {worst * 1e3:.4f} mm"


def test_unknown_joint_values_come_from_the_measured_state(mujoco_arm):
    """A chunk commanding only some joints: the others sit at the measured joint state, as on the arm."""
    model, data = mujoco_arm
    visualizer = ChunkVisualizer(description("so101"))
    measured = np.array([0.3, -0.4, 0.5, 0.2, -1.0, 0.1])
    visualizer.set_measured_state(SO101_JOINTS, measured)
    q_pan_lift = np.array([[-0.6, 0.8]])
    view = visualizer.view(SO101_JOINTS[:2], q_pan_lift, np.zeros((0, 2)), [], [], 0.05)
    expected = mujoco_ee(model, data, np.concatenate([q_pan_lift[0], measured[2:]]))
    assert np.linalg.norm(view.final_positions[0] - expected) < TOLERANCE_M
