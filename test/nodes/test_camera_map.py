"""A policy trained on other camera names (LeRobot's `top` and `wrist`) runs on the graph's `front` and
`wrist` through the semantic node's camera_map; without it, the error says what to set."""

import dataclasses

import pytest

from ..ros_support import REPO, Probe, require_ros_messages


@pytest.fixture(scope="module")
def top_wrist_policy():
    require_ros_messages()
    pytest.importorskip("torch")
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    from ..policy.conftest import INSTRUCTIONS, tiny_config

    config = tiny_config()
    config.backbone = dataclasses.replace(config.backbone, camera_names=("top", "wrist"))
    return AsyncVLAPolicy.build(config, INSTRUCTIONS).eval()


def semantic_node(policy, camera_map):
    from rclpy.parameter import Parameter

    from asyncvla_ros.nodes.semantic_node import SemanticNode

    overrides = [Parameter("camera_map", value=list(camera_map))] if camera_map else []
    return SemanticNode(policy=policy, model_id="m", parameter_overrides=overrides,
                        cli_args=["--ros-args", "--params-file", str(REPO / "config" / "sim.yaml")])


def test_the_policys_cameras_read_the_graph_cameras_camera_map_names(top_wrist_policy):
    probe = Probe("camera_map_probe")
    try:
        node = semantic_node(top_wrist_policy, ["top:=front"])
        try:
            assert sorted(s.topic_name for s in node.subscriptions if s.topic_name.endswith("image_raw")) == \
                ["/front/image_raw", "/wrist/image_raw"]
            assert node.loop.config.camera_names == ("top", "wrist")  # encoded under the policy's names
        finally:
            node.close()
            node.destroy_node()
        with pytest.raises(ValueError, match=r"differ from the policy's cameras \['top', 'wrist'\]: set camera_map \[top:=front\]"):
            semantic_node(top_wrist_policy, [])
        with pytest.raises(ValueError, match="the policy has no camera 'side'"):
            semantic_node(top_wrist_policy, ["side:=front"])
        with pytest.raises(ValueError, match="POLICY_CAMERA:=GRAPH_CAMERA"):
            semantic_node(top_wrist_policy, ["top=front"])
    finally:
        probe.close()
