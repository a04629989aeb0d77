"""The safety filter node over real rclpy: refusals are logged, counted and published; the node lives on."""

import math
import time

import pytest

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    require_ros_messages()
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import NodeSpec
    from asyncvla_ros.msg import SafetyEvent

    probe = Probe("safety_probe")
    for topic, kind in (("safe_joint_command", JointState), ("safety_events", SafetyEvent)):
        probe.record(kind, topic, 50)
    node = NodeProcess(NodeSpec("safety_filter", "safety_filter_node", "asyncvla_ros.nodes.safety_filter_node"),
                       REPO / "config" / "sim.yaml", tmp_path_factory.mktemp("logs"))
    state_pub = probe.node.create_publisher(JointState, "joint_states", 10)
    cmd_pub = probe.node.create_publisher(JointState, "joint_command", 10)
    probe.wait_for(lambda: cmd_pub.get_subscription_count() > 0 and state_pub.get_subscription_count() > 0
                   and probe.node.count_publishers("safety_events") > 0 and probe.node.count_publishers("safe_joint_command") > 0,
                   30, "safety filter topics matched")
    # A live arm: joint states at 20 Hz, as the driver publishes them.
    probe.node.create_timer(0.05, lambda: state_pub.publish(joint_state(JOINTS, [0.0] * 6)))
    time.sleep(0.5)  # let the reverse direction (its publishers to our subscriptions) match too
    yield probe, node, state_pub, cmd_pub
    node.stop()
    probe.close()


def joint_state(names, positions):
    from sensor_msgs.msg import JointState

    from asyncvla_ros.nodes.conversions import to_time

    msg = JointState(name=list(names), position=[float(p) for p in positions])
    msg.header.stamp = to_time(time.time_ns())
    return msg


def send(graph, names, positions):
    probe, node, state_pub, cmd_pub = graph
    before_cmd, before_ev = len(probe.messages("safe_joint_command")), len(probe.messages("safety_events"))
    cmd_pub.publish(joint_state(names, positions))
    time.sleep(0.3)
    return probe.messages("safe_joint_command")[before_cmd:], probe.messages("safety_events")[before_ev:]


def test_good_command_passes_and_large_step_is_clamped(graph):
    out, events = send(graph, JOINTS, [0.01, 0, 0, 0, 0, 0])
    assert len(out) == 1 and out[0].position[0] == pytest.approx(0.01)
    out, events = send(graph, JOINTS, [1.0, 0, 0, 0, 0, 0])
    assert out[0].position[0] == pytest.approx(0.05)  # max_step_rad of shoulder_pan in config/sim.yaml
    assert [e.kind for e in events] == ["max_step"]


@pytest.mark.parametrize(
    "names, positions, kind",
    [
        (JOINTS, [0, math.nan, 0, 0, 0, 0], "nan"),
        (JOINTS[:5] + ["elbow"], [0] * 6, "unknown_joint"),
        (JOINTS, [0] * 5, "dimension"),
    ],
)
def test_malformed_commands_are_refused_and_the_node_keeps_running(graph, names, positions, kind):
    out, events = send(graph, names, positions)
    assert out == []
    assert [e.kind for e in events] == [kind]
    assert events[0].refusal_count >= 1 and events[0].detail
    assert graph[1].alive()
    out, _ = send(graph, JOINTS, [0.0] * 6)
    assert len(out) == 1


def test_estop_latches_until_released_through_the_service(graph):
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    probe, node, *_ = graph
    estop = probe.node.create_publisher(Bool, "estop", 10)
    probe.wait_for(lambda: estop.get_subscription_count() > 0, 10, "estop subscriber")
    estop.publish(Bool(data=True))
    probe.wait_for(lambda: any(e.kind == "estop" and e.estop_latched for e in probe.messages("safety_events")), 5, "estop event")
    out, events = send(graph, JOINTS, [0.0] * 6)
    assert out == [] and events[0].kind == "estop"
    estop.publish(Bool(data=False))  # does not release
    out, _ = send(graph, JOINTS, [0.0] * 6)
    assert out == []
    reply = probe.call(SetBool, "set_estop", SetBool.Request(data=False))
    assert reply.success and "released" in reply.message
    out, _ = send(graph, JOINTS, [0.0] * 6)
    assert len(out) == 1
    assert "refused (nan)" in node.output()  # refusals are logged too
