"""LeRobot's SO100 leader arm as a teleoperation source, against the emulated STS3215 bus: its joint
positions in the follower driver's units (rad; the gripper mapped like the follower's), torque never on;
a missing calibration file is one clear error with the command to run; and the teleop node
(`source: so100_leader`, config/so100.yaml's section) publishes them on `joint_command`."""

import time

import numpy as np
import pytest

from asyncvla_ros.drivers import DriverError
from asyncvla_ros.drivers.so100.leader import SO100LeaderConfig, SO100LeaderSource

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages
from .feetech_bus import PRESENT_POSITION, TORQUE_ENABLE
from .so100_support import ROBOT_ID, emulated_arm, gripper_ticks_to_unit, require_lerobot, ticks_to_rad, write_calibration

GRIPPER_RANGE = (-0.1645, 1.7353)  # config/so100.yaml
TICKS = {1: 1000, 2: 2600, 3: 1500, 4: 2100, 5: 3900, 6: 2700}


def expected(ticks):
    return [ticks_to_rad(i, ticks[i]) for i in range(1, 6)] + [gripper_ticks_to_unit(ticks[6], *GRIPPER_RANGE)]


@pytest.fixture
def leader_bus(tmp_path):
    require_lerobot()
    bus = emulated_arm()
    write_calibration(tmp_path / "calibration")
    yield bus, tmp_path / "calibration"
    bus.close()


def test_the_leader_reads_the_followers_units_with_torque_off(leader_bus):
    bus, cal_dir = leader_bus
    source = SO100LeaderSource(SO100LeaderConfig(port=bus.port, leader_id=ROBOT_ID, calibration_dir=str(cal_dir),
                                                 gripper_range_rad=GRIPPER_RANGE))
    source.connect()
    try:
        for i, t in TICKS.items():
            bus.set_reg(i, PRESENT_POSITION, t, 2)
        np.testing.assert_allclose(source.read(), expected(TICKS), atol=1e-3)
        assert [bus.reg(i, TORQUE_ENABLE, 1) for i in TICKS] == [0] * 6
    finally:
        source.close()
    assert not bus.goal_writes(), "the leader is never commanded"


def test_without_a_calibration_file_connect_says_how_to_make_one(leader_bus, tmp_path):
    bus, _ = leader_bus
    source = SO100LeaderSource(SO100LeaderConfig(port=bus.port, leader_id="nobody", calibration_dir=str(tmp_path / "none")))
    with pytest.raises(DriverError, match="lerobot-calibrate --teleop.type=so100_leader .*--teleop.id=nobody"):
        source.connect()
    with pytest.raises(DriverError, match="not connected"):
        source.read()


def test_the_teleop_node_publishes_the_leaders_positions(leader_bus, tmp_path):
    require_ros_messages()
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import LaunchArgs, graph

    bus, cal_dir = leader_bus
    for i, t in TICKS.items():
        bus.set_reg(i, PRESENT_POSITION, t, 2)
    spec = next(s for s in graph(LaunchArgs(robot="so100", teleop="so100_leader")) if s.name == "teleop")
    probe = Probe("leader_probe")
    probe.record(JointState, "joint_command")
    node = NodeProcess(spec, REPO / "config" / "so100.yaml", tmp_path,
                       {"so100_leader.port": bus.port, "so100_leader.leader_id": ROBOT_ID, "so100_leader.calibration_dir": str(cal_dir)})
    try:
        probe.wait_for(lambda: len(probe.messages("joint_command")) >= 20, 60, "20 joint commands from the leader")
        t0 = time.monotonic()
        time.sleep(2.0)
        commands = probe.messages("joint_command", t0)
        assert len(commands) >= 10, node.output()[-2000:]  # 20 Hz configured; the rate is the machine's
        assert list(commands[-1].name) == list(SO100LeaderSource.joint_names)
        np.testing.assert_allclose(commands[-1].position, expected(TICKS), atol=1e-3)
    finally:
        node.stop()
        probe.close()
