"""The driver node with backend so100, as a lifecycle node over real rclpy, running LeRobot's driver
against the emulated STS3215 bus (test/drivers/feetech_bus.py) on a pseudo-terminal.

Asserted through the node's topics and services and at the bus registers: configure connects with
torque off, activate/deactivate switch torque, joint_states are the registers in radians, commands
become exact Goal_Position registers, a command beyond a joint limit never reaches the bus, and a bus
that stops answering is reported on diagnostics while the node stays up and stops writing.
"""

import time

import numpy as np
import pytest

from ..drivers.feetech_bus import GOAL_POSITION, PRESENT_POSITION, TORQUE_ENABLE
from ..drivers.so100_support import (ROBOT_ID, emulated_arm, gripper_ticks_to_unit, gripper_unit_to_ticks, rad_to_ticks,
                                     require_lerobot, ticks_to_rad, write_calibration)
from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages
from .test_driver_node import transition

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
GRIPPER_RANGE = (-0.1645, 1.7353)  # config/so100.yaml so100.gripper_range_rad
IDS = range(1, 7)


@pytest.fixture(scope="module")
def so100(tmp_path_factory):
    require_ros_messages()
    require_lerobot()
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import NodeSpec

    tmp = tmp_path_factory.mktemp("so100")
    bus = emulated_arm()
    write_calibration(tmp / "calibration")
    probe = Probe("so100_probe")
    probe.record(JointState, "joint_states", 100)
    probe.record(DiagnosticArray, "diagnostics", 100)
    node = NodeProcess(NodeSpec("driver", "driver_node", "asyncvla_ros.nodes.driver_node", lifecycle=True),
                       REPO / "config" / "so100.yaml", tmp,
                       {"so100.port": bus.port, "so100.robot_id": ROBOT_ID, "so100.calibration_dir": str(tmp / "calibration")})
    cmd_pub = probe.node.create_publisher(JointState, "safe_joint_command", 10)
    yield bus, probe, node, cmd_pub
    node.stop()
    probe.close()
    bus.close()


def command(positions):
    from asyncvla_ros.nodes.conversions import joint_state

    return joint_state(JOINTS, positions, time.time_ns())


def latest(probe, since=0.0):
    msgs = probe.messages("joint_states", since)
    assert msgs, "no joint state"
    return np.array([msgs[-1].position[list(msgs[-1].name).index(n)] for n in JOINTS])


def driver_status(probe, since):
    return [s for m in probe.messages("diagnostics", since) for s in m.status if s.name == "driver"]


def test_so100_lifecycle_registers_commands_and_a_dead_bus(so100):
    bus, probe, node, cmd_pub = so100
    assert transition(probe, "configure"), node.output()
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [0] * 6
    ticks = {1: 1200, 2: 2500, 3: 1800, 4: 2200, 5: 1000, 6: 2600}
    for i, t in ticks.items():
        bus.set_reg(i, PRESENT_POSITION, t, 2)
    t_set = time.monotonic()
    probe.wait_for(lambda: len(probe.messages("joint_states", t_set + 0.1)) > 3, 10, "joint states")
    expected = [ticks_to_rad(i, ticks[i]) for i in range(1, 6)] + [gripper_ticks_to_unit(ticks[6], *GRIPPER_RANGE)]
    np.testing.assert_allclose(latest(probe), expected, atol=1e-9)
    msg = probe.messages("joint_states")[-1]
    assert abs(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - time.time()) < 1.0  # capture stamps

    assert transition(probe, "activate")
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [1] * 6
    q = latest(probe)
    target = q + np.array([0.05, -0.05, 0.1, 0.02, -0.1, 0.2])
    t0 = time.monotonic()
    cmd_pub.publish(command(target))
    probe.wait_for(lambda: len(bus.goal_writes(t0)) >= 6, 10, "goal writes")
    goals = {i: bus.reg(i, GOAL_POSITION) for i in IDS}
    assert goals == {**{i: rad_to_ticks(i, target[i - 1]) for i in range(1, 6)}, 6: gripper_unit_to_ticks(target[5], *GRIPPER_RANGE)}

    beyond = q.copy()
    beyond[2] = 1.8  # elbow_flex upper limit 1.69 rad in config/so100.yaml
    t1 = time.monotonic()
    for _ in range(5):
        cmd_pub.publish(command(beyond))
        time.sleep(0.05)
    time.sleep(0.3)
    assert bus.goal_writes(t1) == []
    assert "outside their limits" in node.output()

    assert transition(probe, "deactivate")
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [0] * 6
    assert transition(probe, "activate")

    t_silent = time.monotonic()
    bus.silent = True
    from diagnostic_msgs.msg import DiagnosticStatus

    probe.wait_for(lambda: any(s.level == DiagnosticStatus.ERROR and "link lost" in s.message
                               for s in driver_status(probe, t_silent)), 10,
                   "an ERROR diagnostic saying the link is lost")
    t_reported = time.monotonic()
    print(f"dead bus reported on diagnostics {t_reported - t_silent:.2f} s after it went silent")
    for _ in range(5):
        cmd_pub.publish(command(q))
        time.sleep(0.05)
    time.sleep(0.5)
    assert node.alive()
    assert bus.packets_since(t_reported) == []  # no writes, not even reads, once the link counts as lost
    # The node still answers its lifecycle services (the executor is not blocked) and cleans up.
    assert transition(probe, "deactivate") and transition(probe, "cleanup")
    assert bus.packets_since(t_reported) == []
