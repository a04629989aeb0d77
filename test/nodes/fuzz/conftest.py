"""The `graph` fixture of the fuzz tests: the safety filter, action, semantic, visualizer and front camera
nodes built from config/sim.yaml in this process, a probe with a publisher per fuzzed topic, once per
package."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ...ros_support import Probe, require_ros_messages
from .support import CASES, PARAMS, Graph, Harness

pytest.importorskip("hypothesis")


@pytest.fixture(scope="package")
def graph():
    require_ros_messages()
    pytest.importorskip("torch")
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool, String

    from asyncvla_ros.msg import ActionChunk, RefreshRequest, SemanticFeatures, SimWorldState
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.qos import FEATURES, LATCHED
    from asyncvla_ros.nodes.safety_filter_node import SafetyFilterNode
    from asyncvla_ros.nodes.semantic_node import SemanticNode
    from asyncvla_ros.nodes.semantic_transport import to_message
    from asyncvla_ros.policy.default import load_policy

    probe = Probe("fuzz_probe")
    policy, model_id = load_policy("", "cpu")

    def args(*remaps: str) -> list[str]:
        return ["--ros-args", "--params-file", str(PARAMS), *(a for r in remaps for a in ("-r", r))]

    # Outputs that other nodes here subscribe are moved aside, so that each subscription sees only what
    # the probe sends it.
    nodes = [
        SafetyFilterNode(cli_args=args()),
        ActionNode(policy=policy, model_id=model_id, cli_args=args(
            "joint_command:=fuzz/action_command", "safe_joint_command:=fuzz/safe_joint_command",
            "action_chunk:=fuzz/action_chunk", "semantic_refresh:=fuzz/semantic_refresh")),
        SemanticNode(policy=policy, model_id=model_id, cli_args=args("semantic_features:=fuzz/semantic_out")),
    ]
    try:
        from asyncvla_ros.nodes.visualizer_node import VisualizerNode
        from asyncvla_ros.visualization.descriptions import description

        description("so101").urdf_path()
        nodes.append(VisualizerNode(cli_args=args()))
    except (ImportError, FileNotFoundError):
        pass  # no Pinocchio or no URDF here: the visualizer's own tests say so
    try:
        from asyncvla_ros.nodes.camera_node import CameraNode

        nodes.append(CameraNode(cli_args=args("__node:=front_camera", "front/image_raw:=fuzz/camera_image",
                                              "front/camera_info:=fuzz/camera_info")))
    except (ImportError, RuntimeError):
        pass  # no MuJoCo or no headless OpenGL here: the camera's own tests say so
    try:
        from asyncvla_ros.nodes.teleop_node import TeleopNode

        # The expert demonstrator follows the same sim/world_state; its outputs are moved aside, and its
        # `diagnostics` (where it learns that the driver is active) is the probe's to write.
        nodes.append(TeleopNode(cli_args=args("joint_command:=fuzz/teleop_command", "instruction:=fuzz/teleop_instruction",
                                              "sim/reset_episode:=fuzz/reset_episode", "diagnostics:=fuzz/teleop_diagnostics")))
    except (ImportError, RuntimeError):
        pass  # no MuJoCo here: the teleop node's own tests say so
    harness = Harness(nodes)
    images = np.zeros((policy.config.backbone.image_height_px, policy.config.backbone.image_width_px, 3), np.uint8)
    cond = policy.encode([images] * len(policy.config.backbone.camera_names), "put the red cube in the blue area",
                         np.zeros(policy.config.expert.state_dim, np.float32), stamp_ns=time.time_ns())
    publishers = {
        "joint_states": probe.node.create_publisher(JointState, "joint_states", 10),
        "joint_command": probe.node.create_publisher(JointState, "joint_command", 10),
        "action_safe_command": probe.node.create_publisher(JointState, "fuzz/safe_joint_command", 10),
        "semantic_features": probe.node.create_publisher(SemanticFeatures, "semantic_features", FEATURES),
        "image": probe.node.create_publisher(Image, "front/image_raw", QoSProfile(depth=2)),
        "instruction": probe.node.create_publisher(String, "instruction", LATCHED),
        "action_chunk": probe.node.create_publisher(ActionChunk, "action_chunk", 10),
        "estop": probe.node.create_publisher(Bool, "estop", 10),
        "semantic_refresh": probe.node.create_publisher(RefreshRequest, "semantic_refresh", 10),
        "world_state": probe.node.create_publisher(SimWorldState, "sim/world_state", QoSProfile(depth=2)),
        "teleop_diagnostics": probe.node.create_publisher(DiagnosticArray, "fuzz/teleop_diagnostics", 10),
    }
    # topic -> the node that may be missing
    optional = {"action_chunk": "visualizer", "world_state": "front_camera", "teleop_diagnostics": "teleop"}
    probe.record(JointState, "safe_joint_command", 100)
    probe.record(JointState, "fuzz/teleop_command", 10)
    probe.wait_for(lambda: all(p.get_subscription_count() > 0 for name, p in publishers.items()
                               if name not in optional or optional[name] in harness.nodes)
                   and probe.node.count_publishers("safe_joint_command") > 0, 30, "the nodes' subscriptions matched")
    time.sleep(0.5)
    yield Graph(harness=harness, probe=probe, pub=publishers, features=to_message(cond, 1, model_id, 1.0, inline=True))
    errors = list(harness.errors)
    harness.close()
    probe.close()
    assert not errors, "a node would have died:\n" + "\n".join(errors)
    print("\ngenerated cases per message type (defect kind: cases):")
    for kind, counts in sorted(CASES.items()):
        print(f"  {kind}: {sum(counts.values())} ({', '.join(f'{k} {n}' for k, n in sorted(counts.items()))})")

