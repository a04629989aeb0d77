"""The visualizer node over real rclpy: an ActionChunk in, its MarkerArray, Paths and ghost JointState out."""

import time

import numpy as np
import pytest

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
HORIZON = 4


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    require_ros_messages()
    pytest.importorskip("pinocchio", reason="needs Pinocchio: pip install pin")
    from nav_msgs.msg import Path
    from sensor_msgs.msg import JointState
    from visualization_msgs.msg import MarkerArray

    from asyncvla_ros.launch_graph import NodeSpec
    from asyncvla_ros.msg import ActionChunk
    from asyncvla_ros.visualization.descriptions import description

    try:
        description("so101").urdf_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    probe = Probe("visualizer_probe")
    for topic, kind in (("chunk_markers", MarkerArray), ("chunk_path", Path), ("sfm_chunk_path", Path),
                        ("ghost/joint_states", JointState)):
        probe.record(kind, topic, 10)
    node = NodeProcess(NodeSpec("visualizer", "visualizer_node", "asyncvla_ros.nodes.visualizer_node", {"ghost_step": 1}),
                       REPO / "config" / "sim.yaml", tmp_path_factory.mktemp("logs"))
    chunk_pub = probe.node.create_publisher(ActionChunk, "action_chunk", 10)
    probe.wait_for(lambda: chunk_pub.get_subscription_count() > 0 and probe.node.count_publishers("chunk_markers") > 0
                   and probe.node.count_publishers("ghost/joint_states") > 0, 30, "visualizer topics matched")
    time.sleep(0.5)
    yield probe, node, chunk_pub
    node.stop()
    probe.close()


def chunk_message(chunk_id: int, horizon: int = HORIZON, dim: int = 6):
    from asyncvla_ros.msg import ActionChunk
    from asyncvla_ros.nodes.conversions import to_time

    rng = np.random.default_rng(chunk_id)
    final = rng.uniform(-0.8, 0.8, size=(horizon, dim))
    sfm = final.copy()
    sfm[2] += 0.3
    msg = ActionChunk(chunk_id=chunk_id, horizon=horizon, action_dim=dim, joint_names=JOINTS[:dim], step_period_s=0.05,
                      mode="asyncvla", semantic_age_s=0.4)
    msg.header.stamp = to_time(1_700_000_000_000_000_000 + chunk_id)
    msg.actions = final.astype(np.float32).ravel().tolist()
    msg.sfm_actions = sfm.astype(np.float32).ravel().tolist()
    msg.confidence = [0.9, 0.8, 0.1, 0.7][:horizon]
    msg.regenerated = [False, False, True, False][:horizon]
    return msg, final.astype(np.float32).astype(np.float64)


def stamp_of(msg):
    return msg.markers[-1].header.stamp if hasattr(msg, "markers") else msg.header.stamp


def test_chunk_becomes_markers_paths_and_ghost(graph):
    from asyncvla_ros.visualization.chunk_view import ChunkVisualizer
    from asyncvla_ros.visualization.descriptions import description

    probe, node, chunk_pub = graph
    msg, final = chunk_message(7)
    chunk_pub.publish(msg)
    for topic in ("chunk_markers", "chunk_path", "sfm_chunk_path", "ghost/joint_states"):
        probe.wait_for(lambda t=topic: any(stamp_of(m) == msg.header.stamp for m in probe.messages(t)), 10, f"{topic} for chunk 7")
    expected = ChunkVisualizer(description("so101")).view(JOINTS, final, [], [], [], 0.05).final_positions

    markers = probe.messages("chunk_markers")[-1].markers
    spheres = sorted((m for m in markers if m.ns == "step_confidence"), key=lambda m: m.id)
    assert len(spheres) == HORIZON and all(m.header.frame_id == "base_link" for m in spheres)
    got = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for m in spheres])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert [m.id for m in markers if m.ns == "regenerated"] == [2]
    assert spheres[2].color.r > 0.8 and spheres[2].color.g < 0.5  # confidence 0.1: red-ward
    info = next(m for m in markers if m.ns == "info").text
    assert "chunk 7 (asyncvla)" in info and "0.40 s old" in info and "1/4 steps regenerated" in info

    path = probe.messages("chunk_path")[-1]
    assert path.header.frame_id == "base_link" and len(path.poses) == HORIZON
    np.testing.assert_allclose([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in path.poses], expected, atol=1e-9)
    sfm_path = probe.messages("sfm_chunk_path")[-1]
    sfm_z = [p.pose.position.z for p in sfm_path.poses]
    assert sfm_z[2] != pytest.approx(path.poses[2].pose.position.z) and sfm_z[0] == pytest.approx(path.poses[0].pose.position.z)

    ghost = probe.messages("ghost/joint_states")[-1]
    assert list(ghost.name) == JOINTS
    np.testing.assert_allclose(ghost.position, final[1])  # ghost_step = 1


def test_bad_chunk_is_logged_and_the_node_lives_on(graph):
    probe, node, chunk_pub = graph
    bad, _ = chunk_message(8)
    bad.actions = bad.actions[:-1]
    chunk_pub.publish(bad)
    probe.wait_for(lambda: "chunk 8 not drawn" in node.output(), 10, "the rejection in the node's log")
    good, _ = chunk_message(9)
    chunk_pub.publish(good)
    probe.wait_for(lambda: any(m.header.stamp == good.header.stamp for m in probe.messages("chunk_path")), 10, "chunk 9 drawn")
    assert node.alive()
