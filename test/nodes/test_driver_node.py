"""The sim driver as a lifecycle node over real rclpy."""

import time

import numpy as np
import pytest

from ..sim._support import skip_without_sim
from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    require_ros_messages()
    skip_without_sim()
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import NodeSpec
    from asyncvla_ros.msg import SimWorldState

    probe = Probe("driver_probe")
    probe.record(JointState, "joint_states", 50)
    probe.record(SimWorldState, "sim/world_state", 10)
    node = NodeProcess(NodeSpec("driver", "driver_node", "asyncvla_ros.nodes.driver_node", lifecycle=True),
                       REPO / "config" / "sim.yaml", tmp_path_factory.mktemp("logs"))
    cmd_pub = probe.node.create_publisher(JointState, "safe_joint_command", 10)
    yield probe, node, cmd_pub
    node.stop()
    probe.close()


def transition(probe, label):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
           "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}
    # Resent after 15 s without a reply (a request lost to discovery); a repeat of one that did arrive is
    # refused by the lifecycle, and the first reply wins.
    return probe.call(ChangeState, "driver/change_state", ChangeState.Request(transition=Transition(id=ids[label])), 60,
                      resend_after_s=15).success


def command(positions):
    from asyncvla_ros.nodes.conversions import joint_state

    return joint_state(JOINTS, positions, time.time_ns())


def latest_positions(probe):
    msg = probe.messages("joint_states")[-1]
    return np.array([msg.position[list(msg.name).index(n)] for n in JOINTS])


def test_lifecycle_connects_enables_and_stops(driver):
    probe, node, cmd_pub = driver
    time.sleep(1.0)
    assert probe.messages("joint_states") == []  # unconfigured: not connected, nothing published
    assert transition(probe, "configure")
    probe.wait_for(lambda: len(probe.messages("joint_states")) > 5, 30, "joint states after configure")
    msg = probe.messages("joint_states")[-1]
    assert list(msg.name) == JOINTS and msg.header.stamp.sec > 0
    assert len(probe.messages("sim/world_state")) > 0

    # Inactive: commands are ignored, the arm holds.
    start = latest_positions(probe)
    target = start.copy()
    target[0] += 0.3
    for _ in range(10):
        cmd_pub.publish(command(target))
        time.sleep(0.05)
    assert abs(latest_positions(probe)[0] - start[0]) < 0.02
    assert "driver not active" in node.output()

    assert transition(probe, "activate")
    for _ in range(30):
        cmd_pub.publish(command(target))
        time.sleep(0.05)
    assert abs(latest_positions(probe)[0] - target[0]) < 0.05  # tracked the target

    # A command naming an unknown joint is rejected and logged; the node keeps running.
    from asyncvla_ros.nodes.conversions import joint_state

    cmd_pub.publish(joint_state(JOINTS[:5] + ["elbow"], target, time.time_ns()))
    time.sleep(0.3)
    assert "command rejected" in node.output() and node.alive()

    assert transition(probe, "deactivate")
    held = latest_positions(probe)
    back = held.copy()
    back[0] -= 0.3
    for _ in range(10):
        cmd_pub.publish(command(back))
        time.sleep(0.05)
    assert abs(latest_positions(probe)[0] - held[0]) < 0.02
    assert transition(probe, "cleanup")
