"""A policy trained on a dataset in LeRobot's normalised ranges (`lerobot-record` without use_degrees:
`train --joint-units range_m100_100,...,range_0_100`, LeRobot's `*.pos` names) meets the SO100's
params file: without the calibrated spans the action node (and the semantic node, for a policy that reads
the state in its prompt) refuses to start and says what to set; with them (what `asyncvla-ros so100-ranges` prints) they start, and the action node's loop maps
the driver's radians onto the policy's -100..100 and back."""

import dataclasses

import numpy as np
import pytest

from ..ros_support import REPO, Probe, require_ros_messages

LEROBOT_NAMES = tuple(f"{j}.pos" for j in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"))
UNITS = ("range_m100_100",) * 5 + ("range_0_100",)
LOWER = [-1.9, -1.7, -1.6, -1.8, -2.9, -0.16]
UPPER = [1.9, 1.7, 1.6, 1.8, 2.9, 1.74]


@pytest.fixture(scope="module")
def normalised_range_policy():
    require_ros_messages()
    pytest.importorskip("torch")
    from asyncvla_ros.policy.config import JointSpaceConfig
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    from ..policy.conftest import INSTRUCTIONS, tiny_config

    config = dataclasses.replace(tiny_config(), joints=JointSpaceConfig(LEROBOT_NAMES, UNITS))
    # The state in the prompt, so the semantic node maps it too (otherwise only the action node does).
    config.backbone = dataclasses.replace(config.backbone, state_in_prompt=True)
    return AsyncVLAPolicy.build(config, INSTRUCTIONS).eval()


def start(node_class, policy, ranges: bool):
    from rclpy.parameter import Parameter

    overrides = [Parameter("range_lower_rad", value=LOWER), Parameter("range_upper_rad", value=UPPER)] if ranges else []
    return node_class(policy=policy, model_id="m", parameter_overrides=overrides,
                      cli_args=["--ros-args", "--params-file", str(REPO / "config" / "so100.yaml")])


@pytest.fixture(scope="module")
def ros():
    probe = Probe("joint_units_probe")  # initialises rclpy for the nodes made here
    yield
    probe.close()


@pytest.mark.parametrize("node", ["action", "semantic"])
def test_a_normalised_range_policy_starts_only_with_the_calibrated_spans(normalised_range_policy, ros, node):
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.semantic_node import SemanticNode

    node_class = ActionNode if node == "action" else SemanticNode
    with pytest.raises(ValueError, match="LeRobot's normalised range .*set range_lower_rad and range_upper_rad"):
        start(node_class, normalised_range_policy, ranges=False)
    started = start(node_class, normalised_range_policy, ranges=True)
    try:
        if node == "action":
            js = started.loop.joint_space
            assert js is not None  # not the identity: the loop converts at the policy call
            np.testing.assert_allclose(js.to_policy(np.array(LOWER)), [-100.0] * 5 + [0.0])
            np.testing.assert_allclose(js.to_policy(np.array(UPPER)), [100.0] * 6)
            np.testing.assert_allclose(js.to_robot(np.zeros(6))[:5], (np.array(LOWER) + np.array(UPPER))[:5] / 2)
    finally:
        if hasattr(started, "close"):
            started.close()
        started.destroy_node()
