"""The driver node with backend kinova_gen2_ros: it drives an already running Gen2 ROS driver through
its topics. The running driver is played by the test: it integrates the joint velocities it receives
(std_msgs/Float64MultiArray, rad/s; dropped when no new one arrives within 50 ms, as a Gen2 stops) and
publishes sensor_msgs/JointState at 100 Hz.

Asserted: the arm reaches a commanded target; every velocity the driver received is within the
speed limits; the stream runs near 100 Hz; an e-stop ends it with zero velocity and later commands do
not restart it.
"""

import threading
import time

import numpy as np
import pytest

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages
from .test_driver_node import transition

JOINTS = [f"j2n6s300_joint_{i}" for i in range(1, 7)]
LIMITS = np.array([0.628, 0.628, 0.628, 0.838, 0.838, 0.838])  # config/kinova_gen2.yaml, rad/s
START = np.array([0.2, 3.1, 3.2, 0.0, 0.5, -0.4])


class FakeGen2RosDriver:
    def __init__(self, probe: Probe) -> None:
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        self.lock = threading.Lock()
        self.position = START.copy()
        self.velocity = np.zeros(6)
        self.last_cmd = 0.0
        self.received: list[tuple[float, np.ndarray]] = []
        self.last_t = time.monotonic()
        self.pub = probe.node.create_publisher(JointState, "/fake_j2n6s300/out/joint_state", 10)
        probe.node.create_subscription(Float64MultiArray, "/fake_j2n6s300/in/joint_velocity", self.on_velocity, 50)
        probe.node.create_timer(0.01, self.on_timer)

    def on_velocity(self, msg) -> None:
        with self.lock:
            self.velocity = np.array(msg.data, dtype=np.float64)
            self.last_cmd = time.monotonic()
            self.received.append((self.last_cmd, self.velocity.copy()))

    def on_timer(self) -> None:
        from asyncvla_ros.nodes.conversions import joint_state

        now = time.monotonic()
        with self.lock:
            if now - self.last_cmd > 0.05:
                self.velocity = np.zeros(6)
            self.position += self.velocity * (now - self.last_t)
            self.last_t = now
            pos, vel = self.position.copy(), self.velocity.copy()
        self.pub.publish(joint_state(JOINTS + ["j2n6s300_joint_finger_1"], list(pos) + [0.0], time.time_ns(), list(vel) + [0.0]))

    def stream(self, since=0.0):
        with self.lock:
            items = [(t, v) for t, v in self.received if t >= since]
        return np.array([t for t, _ in items]), np.array([v for _, v in items]).reshape(-1, 6)


@pytest.fixture(scope="module")
def kinova_ros(tmp_path_factory):
    require_ros_messages()
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import NodeSpec

    probe = Probe("kinova_ros_probe")
    probe.record(JointState, "joint_states", 100)
    fake = FakeGen2RosDriver(probe)
    node = NodeProcess(NodeSpec("driver", "driver_node", "asyncvla_ros.nodes.driver_node", lifecycle=True),
                       REPO / "config" / "kinova_gen2.yaml", tmp_path_factory.mktemp("kinova_ros"),
                       {"backend": "kinova_gen2_ros", "kinova_gen2_ros.velocity_type": "std_msgs/msg/Float64MultiArray",
                        "kinova_gen2_ros.velocity_topic": "/fake_j2n6s300/in/joint_velocity",
                        "kinova_gen2_ros.joint_state_topic": "/fake_j2n6s300/out/joint_state"})
    cmd_pub = probe.node.create_publisher(JointState, "safe_joint_command", 10)
    yield probe, fake, node, cmd_pub
    node.stop()
    probe.close()


def latest(probe) -> np.ndarray:
    msg = probe.messages("joint_states")[-1]
    return np.array([msg.position[list(msg.name).index(n)] for n in JOINTS])


def test_drives_a_running_gen2_ros_driver_within_its_speed_limits(kinova_ros):
    probe, fake, node, cmd_pub = kinova_ros
    from asyncvla_ros.nodes.conversions import joint_state

    assert transition(probe, "configure"), node.output()
    probe.wait_for(lambda: len(probe.messages("joint_states")) > 5, 20, "joint states relayed from the running driver")
    np.testing.assert_allclose(latest(probe), START, atol=1e-6)
    assert len(fake.stream()[0]) == 0  # nothing is streamed before activate

    assert transition(probe, "activate")
    target = START + np.array([0.3, -0.3, 0.2, 0.5, -0.5, 0.4])
    t0 = time.monotonic()
    deadline = t0 + 8.0
    while time.monotonic() < deadline and np.abs(latest(probe) - target).max() > 0.01:
        cmd_pub.publish(joint_state(JOINTS, target, time.time_ns()))
        time.sleep(0.05)
    reached = np.abs(latest(probe) - target).max()
    times, v = fake.stream(t0)
    assert reached <= 0.01, f"{reached} rad from the target\n{node.output()[-2000:]}"
    assert np.all(np.abs(v).max(axis=0) <= LIMITS + 1e-9), np.abs(v).max(axis=0)
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"\nvelocity stream to the running driver: {rate:.1f} Hz, peak speed / limit {np.round(np.abs(v).max(axis=0) / LIMITS, 3).tolist()}")
    assert rate > 50.0

    # e-stop (std_msgs/Bool on `estop`, the topic the safety filter latches on) while moving: zero, then silence.
    from std_msgs.msg import Bool

    estop = probe.node.create_publisher(Bool, "estop", 10)
    probe.wait_for(lambda: estop.get_subscription_count() > 0, 10, "the driver's estop subscription")
    far = target - np.array([0.5, -0.5, 0.5, 0.5, 0.5, 0.5])
    for _ in range(6):
        cmd_pub.publish(joint_state(JOINTS, far, time.time_ns()))
        time.sleep(0.05)
    assert np.abs(fake.stream(time.monotonic() - 0.1)[1]).max() > 0.1  # moving
    estop.publish(Bool(data=True))
    probe.wait_for(lambda: "e-stop: motion stopped" in node.output(), 10, "the e-stop")
    time.sleep(0.1)
    t_end, v_end = fake.stream()
    assert np.all(v_end[-1] == 0.0)
    count = len(t_end)
    for _ in range(6):
        cmd_pub.publish(joint_state(JOINTS, far, time.time_ns()))
        time.sleep(0.05)
    assert len(fake.stream()[0]) == count  # the stream stopped and commands do not restart it

    assert transition(probe, "deactivate")
    time.sleep(0.2)
    assert len(fake.stream()[0]) == count
    assert transition(probe, "cleanup")
