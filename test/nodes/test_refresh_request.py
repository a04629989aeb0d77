"""The confidence trigger's refresh request crosses processes: an ActionNode in this process asks, the
semantic node in its own process (base rate 0.2 Hz) encodes the next frame set at once and names the
reason in its SemanticFeatures."""

import time

import numpy as np
import pytest

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages
from ..sim._support import skip_without_sim

PARAMS = REPO / "config" / "sim.yaml"
BASE_PERIOD_S = 5.0


def test_a_refresh_request_from_the_action_node_makes_the_semantic_node_encode_at_once(tmp_path):
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("torch")
    from sensor_msgs.msg import Image

    from asyncvla_ros.control.refresh_trigger import RefreshRequestInfo
    from asyncvla_ros.launch_graph import LaunchArgs, graph
    from asyncvla_ros.msg import RefreshRequest, SemanticFeatures
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.images import rgb_to_image

    (spec,) = [s for s in graph(LaunchArgs()) if s.name == "semantic"]
    probe = Probe("refresh_probe")
    probe.record(SemanticFeatures, "semantic_features", 2)
    probe.record(RefreshRequest, "semantic_refresh")
    cameras = {name: probe.node.create_publisher(Image, f"{name}/image_raw", 2) for name in ("front", "wrist")}

    def frames():
        stamp = time.time_ns()
        for name, pub in cameras.items():
            pub.publish(rgb_to_image(np.full((112, 112, 3), 90, np.uint8), stamp, f"{name}_camera"))

    probe.node.create_timer(0.1, frames)
    semantic = NodeProcess(spec, PARAMS, tmp_path, {"max_rate_hz": 1.0 / BASE_PERIOD_S})
    from rclpy.parameter import Parameter

    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    action = ActionNode(parameter_overrides=[Parameter("joint_names", value=joints)])
    probe.executor.add_node(action)
    try:
        probe.wait_for(lambda: probe.messages("semantic_features"), 120, f"the first encode\n{semantic.output()}")
        first = time.monotonic()
        assert probe.messages("semantic_features")[0].trigger == ""
        time.sleep(0.5)
        asked = time.monotonic()
        action.request_refresh(RefreshRequestInfo(time.time_ns(), 0.4, 0.7, "chunk mean confidence 0.40 < recent median 0.70 - 0.1"), 7)
        probe.wait_for(lambda: any(m.trigger for m in probe.messages("semantic_features")), BASE_PERIOD_S - 1.5,
                       f"a triggered encode before the base rate's next one\n{semantic.output()}")
        got = [m for m in probe.messages("semantic_features") if m.trigger]
        assert got[0].trigger == "chunk mean confidence 0.40 < recent median 0.70 - 0.1"
        assert time.monotonic() - first < BASE_PERIOD_S
        (request,) = probe.messages("semantic_refresh")  # on the topic too: recorders hold it
        assert request.chunk_id == 7 and request.confidence == pytest.approx(0.4)
        print(f"triggered encode {time.monotonic() - asked:.2f} s after the request")
        assert "refresh 2 triggered" in semantic.output()
    finally:
        probe.executor.remove_node(action)
        action.destroy_node()
        semantic.stop()
        probe.close()


def test_co_located_the_request_reaches_the_semantic_loop_in_memory():
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("torch")
    import rclpy
    from rclpy.parameter import Parameter

    from asyncvla_ros.control.refresh_trigger import RefreshRequestInfo
    from asyncvla_ros.control.semantic_store import LatestSemantics
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.semantic_node import SemanticNode

    rclpy.init(args=[], domain_id=97)
    try:
        store = LatestSemantics()
        joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
        action = ActionNode(store=store, parameter_overrides=[Parameter("joint_names", value=joints)])
        semantic = SemanticNode(policy=action.policy, model_id=action.model_id, store=store,
                                parameter_overrides=[Parameter("max_rate_hz", value=0.1)])
        try:
            action.on_refresh_request = semantic.request_refresh  # as policy_node wires them
            semantic.loop._last_start_ns = 0  # as if it had just encoded: the 0.1 Hz cap holds the next one off
            assert semantic.loop.seconds_until_allowed(1_000_000_000) > 5
            action.request_refresh(RefreshRequestInfo(1, 0.3, 0.6, "dropped"), 3)
            assert semantic.loop.seconds_until_allowed(1_000_000_000) == 0.0
        finally:
            semantic.close()
            semantic.destroy_node()
            action.destroy_node()
    finally:
        rclpy.try_shutdown()
