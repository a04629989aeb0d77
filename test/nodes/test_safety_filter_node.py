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


def send(graph, names, positions, with_command=False):
    probe, node, state_pub, cmd_pub = graph
    before_cmd, before_ev = len(probe.messages("safe_joint_command")), len(probe.messages("safety_events"))
    command = joint_state(names, positions)
    cmd_pub.publish(command)
    time.sleep(0.3)
    out = probe.messages("safe_joint_command")[before_cmd:], probe.messages("safety_events")[before_ev:]
    return (*out, command) if with_command else out


def test_good_command_passes_and_large_step_is_clamped(graph):
    out, events = send(graph, JOINTS, [0.01, 0, 0, 0, 0, 0])
    assert len(out) == 1 and out[0].position[0] == pytest.approx(0.01)
    out, events, command = send(graph, JOINTS, [1.0, 0, 0, 0, 0, 0], with_command=True)
    assert out[0].position[0] == pytest.approx(0.05)  # max_step_rad of shoulder_pan in config/sim.yaml
    assert [e.kind for e in events] == ["max_step"]
    # Stamped as the command it let through: the action node puts it in that command's history slot.
    assert out[0].header.stamp == command.header.stamp


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


def test_with_use_sim_time_stamps_are_checked_on_the_bag_time_line(graph, tmp_path):
    """A replayed bag drives the filter with /clock: commands on the bag's time line pass, wall-stamped ones
    are refused as stamped in the future, and the watchdog (steady clock) still reports a silent state."""
    import yaml
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import NodeSpec
    from asyncvla_ros.msg import SafetyEvent
    from asyncvla_ros.nodes.conversions import to_time

    ns = "/replayed"  # apart from the module's live filter (which ignores /clock)
    probe = graph[0]
    probe.record(JointState, f"{ns}/safe_joint_command", 50)
    probe.record(SafetyEvent, f"{ns}/safety_events", 50)
    params = tmp_path / "params.yaml"  # a params file's node key carries the namespace
    section = yaml.safe_load((REPO / "config" / "sim.yaml").read_text())["safety_filter"]
    params.write_text(yaml.safe_dump({f"{ns}/safety_filter": section}))
    node = NodeProcess(NodeSpec("safety_filter", "safety_filter_node", "asyncvla_ros.nodes.safety_filter_node"),
                       params, tmp_path, {"use_sim_time": "true"}, ("-r", f"__ns:={ns}"))
    bag_t0_ns = 1_000 * 10**9  # a bag recorded long ago
    start = time.monotonic()

    def bag_now_ns():
        return bag_t0_ns + int((time.monotonic() - start) * 1e9)

    def stamped(positions, stamp_ns):
        msg = JointState(name=list(JOINTS), position=[float(p) for p in positions])
        msg.header.stamp = to_time(stamp_ns)
        return msg

    clock_pub = probe.node.create_publisher(Clock, "/clock", 10)
    state_pub = probe.node.create_publisher(JointState, f"{ns}/joint_states", 10)
    cmd_pub = probe.node.create_publisher(JointState, f"{ns}/joint_command", 10)
    clock_timer = state_timer = None
    try:
        probe.wait_for(lambda: min(p.get_subscription_count() for p in (clock_pub, state_pub, cmd_pub)) > 0
                       and probe.node.count_publishers(f"{ns}/safe_joint_command") > 0, 60, "the sim-time filter's topics")
        clock_timer = probe.node.create_timer(0.01, lambda: clock_pub.publish(Clock(clock=to_time(bag_now_ns()))))
        state_timer = probe.node.create_timer(0.05, lambda: state_pub.publish(stamped([0.0] * 6, bag_now_ns())))
        time.sleep(0.5)

        def passed():  # resent until one passes: on a loaded machine a state can arrive late and be refused
            cmd_pub.publish(stamped([0.01, 0, 0, 0, 0, 0], bag_now_ns()))
            time.sleep(0.2)
            return probe.messages(f"{ns}/safe_joint_command")

        probe.wait_for(passed, 10, "a command on the bag's time line to pass")
        out = probe.messages(f"{ns}/safe_joint_command")[-1]
        assert out.position[0] == pytest.approx(0.01)
        assert abs(out.header.stamp.sec - bag_t0_ns // 10**9) < 60  # stamped on the bag's time line

        time.sleep(0.3)
        before = len(probe.messages(f"{ns}/safe_joint_command"))
        cmd_pub.publish(stamped([0.02, 0, 0, 0, 0, 0], time.time_ns()))  # a live command: decades ahead
        probe.wait_for(lambda: any("in the future" in e.detail for e in probe.messages(f"{ns}/safety_events")), 5,
                       "the wall-stamped command to be refused")
        assert len(probe.messages(f"{ns}/safe_joint_command")) == before

        probe.node.destroy_timer(state_timer)
        probe.node.destroy_timer(clock_timer)  # the bag paused: no /clock either
        state_timer = clock_timer = None
        probe.wait_for(lambda: any(e.kind == "stale_state" for e in probe.messages(f"{ns}/safety_events")), 5,
                       "the watchdog to report the silent joint state")
        assert node.alive()
    finally:
        for timer in (clock_timer, state_timer):
            if timer is not None:
                probe.node.destroy_timer(timer)
        for pub in (clock_pub, state_pub, cmd_pub):
            probe.node.destroy_publisher(pub)
        node.stop()
