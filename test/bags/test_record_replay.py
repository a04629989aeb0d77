"""Record -> replay round trip over real rclpy on loopback, with the recorder and player as processes
started by `asyncvla-ros record` / `asyncvla-ros replay`.

A probe publishes the graph's message types (images, joint states, latched instruction, semantic
features with a payload, chunks); the recorder, stopped by SIGINT (Ctrl-C), leaves a readable bag with
exactly those messages (payload stripped unless asked). The player then publishes them back, twice
as fast, remapped, with /clock: same topics, counts, types, bytes (payloads and header stamps).
"""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ..ros_support import require_ros_messages

N_STATES, N_IMAGES, N_CHUNKS, N_FEATURES = 20, 8, 6, 3


def cli(*args):
    return [sys.executable, "-m", "asyncvla_ros.cli", *args]


def stop(proc, sig=signal.SIGINT, timeout_s=20.0):
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture(scope="module")
def probe():
    require_ros_messages()
    from ..ros_support import Probe

    p = Probe("bag_probe")
    yield p
    p.close()


def publish_graph_traffic(probe):
    """Publish known messages on graph topics; returns {topic: [serialized bytes in order]}."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String

    from asyncvla_ros.msg import ActionChunk, SemanticFeatures, TensorBlob
    from asyncvla_ros.nodes.conversions import to_time
    from asyncvla_ros.nodes.images import rgb_to_image
    from asyncvla_ros.nodes.qos import FEATURES, LATCHED

    node = probe.node
    pubs = {"/joint_states": node.create_publisher(JointState, "/joint_states", 50),
            "/front/image_raw": node.create_publisher(Image, "/front/image_raw", 50),
            "/action_chunk": node.create_publisher(ActionChunk, "/action_chunk", 50),
            "/semantic_features": node.create_publisher(SemanticFeatures, "/semantic_features", FEATURES),
            "/instruction": node.create_publisher(String, "/instruction", LATCHED)}
    probe.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30, "the recorder's subscriptions")
    time.sleep(0.5)
    sent = {t: [] for t in pubs}
    rng = np.random.default_rng(0)

    def send(topic, msg):
        pubs[topic].publish(msg)
        sent[topic].append(serialize_message(msg))

    send("/instruction", String(data="put the red cube in the blue area"))
    t0 = time.time_ns()
    for i in range(N_STATES):
        stamp = t0 + i * 50_000_000
        js = JointState(name=["a", "b"], position=[0.01 * i, -0.5])
        js.header.stamp = to_time(stamp)
        send("/joint_states", js)
        if i % 2 == 0 and i // 2 < N_IMAGES:
            send("/front/image_raw", rgb_to_image(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), stamp, "front"))
        if i % 3 == 0 and i // 3 < N_CHUNKS:
            c = ActionChunk(chunk_id=i // 3, tick=i, seed=i, horizon=2, action_dim=2, actions=[0.1, 0.2, 0.3, float(i)],
                            confidence=[0.3, 0.8], regenerated=[True, False], mode="asyncvla", joint_names=["a", "b"])
            c.header.stamp = to_time(stamp)
            send("/action_chunk", c)
        if i % 7 == 0 and i // 7 < N_FEATURES:
            f = SemanticFeatures(seq=i // 7 + 1, model_id="m", feature_kind="prefix_kv_cache", transport="inline",
                                 tensors=[TensorBlob(name="keys.0", dtype="float32", shape=[4], data=bytes(range(16)))])
            f.header.stamp = to_time(stamp)
            send("/semantic_features", f)
        time.sleep(0.05)
    for p in pubs.values():
        node.destroy_publisher(p)
    return sent


TYPES = {"/joint_states": "sensor_msgs/msg/JointState", "/replayed/joint_states": "sensor_msgs/msg/JointState",
         "/front/image_raw": "sensor_msgs/msg/Image", "/action_chunk": "asyncvla_ros/msg/ActionChunk",
         "/semantic_features": "asyncvla_ros/msg/SemanticFeatures", "/instruction": "std_msgs/msg/String"}


def decode(topic, raws):
    """rclpy messages from serialized bytes (the middleware may add trailing alignment padding, so the
    comparison is of messages, every field, not of byte strings)."""
    from rclpy.serialization import deserialize_message

    from asyncvla_ros.nodes.bag_qos import message_class

    return [deserialize_message(raw, message_class(TYPES[topic])) for raw in raws]


def read_bag(path):
    from asyncvla_ros.bags.reader import open_bag

    reader = open_bag(path)
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        out = {}
        for conn, _, raw in reader.messages():
            out.setdefault(conn.topic, []).append(bytes(raw))
        return types, out
    finally:
        reader.close()


@pytest.fixture(scope="module")
def recorded(probe, tmp_path_factory):
    bag = tmp_path_factory.mktemp("rec") / "bag"
    proc = subprocess.Popen(cli("record", str(bag), "--topics", "joint_states", "/front/image_raw", "/action_chunk",
                                "/semantic_features", "/instruction"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        sent = publish_graph_traffic(probe)
        time.sleep(1.0)
    finally:
        out = stop(proc)  # SIGINT, as Ctrl-C in a terminal
    assert proc.returncode == 0, out
    return bag, sent, out


def test_recorder_stopped_by_ctrl_c_leaves_a_bag_with_every_message(recorded):
    from asyncvla_ros.bags.writer import strip_semantic_payload

    bag, sent, log = recorded
    types, got = read_bag(bag)
    assert types == {"/joint_states": "sensor_msgs/msg/JointState", "/front/image_raw": "sensor_msgs/msg/Image",
                     "/action_chunk": "asyncvla_ros/msg/ActionChunk", "/semantic_features": "asyncvla_ros/msg/SemanticFeatures",
                     "/instruction": "std_msgs/msg/String"}
    for topic in ("/joint_states", "/front/image_raw", "/action_chunk", "/instruction"):
        assert decode(topic, got[topic]) == decode(topic, sent[topic]), topic  # every field: stamps, payloads, order
    # Semantic features: metadata kept, tensor bytes dropped (no --semantic-payload).
    features = decode("/semantic_features", got["/semantic_features"])
    assert features == decode("/semantic_features", [strip_semantic_payload(raw) for raw in sent["/semantic_features"]])
    assert all(len(b.data) == 0 and list(b.shape) == [4] for f in features for b in f.tensors)
    assert len(decode("/front/image_raw", got["/front/image_raw"])[0].data) == 6 * 8 * 3
    assert "closed" in log


def test_replay_publishes_the_same_messages_with_their_timing_remapped_and_a_clock(probe, recorded):
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState

    from asyncvla_ros.msg import ActionChunk, SemanticFeatures
    from asyncvla_ros.nodes.qos import LATCHED
    from std_msgs.msg import String

    bag, sent, _ = recorded
    _, in_bag = read_bag(bag)
    received, arrival = {}, {}

    def keep(topic):
        def cb(raw):
            received.setdefault(topic, []).append(bytes(raw))
            arrival.setdefault(topic, []).append(time.monotonic())
        return cb

    subs = {"/replayed/joint_states": (JointState, 100), "/front/image_raw": (Image, 100), "/action_chunk": (ActionChunk, 100),
            "/semantic_features": (SemanticFeatures, QoSProfile(depth=10)), "/instruction": (String, LATCHED)}
    for topic, (kind, qos) in subs.items():
        probe.node.create_subscription(kind, topic, keep(topic), qos, raw=True)
    clocks = []
    probe.node.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), 1000)
    t0 = time.monotonic()
    proc = subprocess.run(cli("replay", str(bag), "--rate", "2", "--remap", "/joint_states:=/replayed/joint_states",
                              "--wait-for-subscribers", "20"), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    probe.wait_for(lambda: len(received.get("/replayed/joint_states", [])) == N_STATES, 10, "every replayed joint state")
    time.sleep(0.3)
    assert decode("/joint_states", received["/replayed/joint_states"]) == decode("/joint_states", in_bag["/joint_states"])
    for topic in ("/front/image_raw", "/action_chunk", "/semantic_features", "/instruction"):
        assert decode(topic, received[topic]) == decode(topic, in_bag[topic]), topic
    # Timing: the 20 joint states were recorded 50 ms apart; at x2 they arrive ~25 ms apart.
    span = arrival["/replayed/joint_states"][-1] - arrival["/replayed/joint_states"][0]
    assert 0.5 * (N_STATES - 1) * 0.025 < span < 2.0 * (N_STATES - 1) * 0.025, span
    assert clocks and all(b >= a for a, b in zip(clocks, clocks[1:])), "the /clock went backwards"
    print(f"replay took {time.monotonic() - t0:.2f} s; joint states span {span:.3f} s at x2; {len(clocks)} clock messages")


def test_bad_input_exits_with_a_clear_message(tmp_path):
    require_ros_messages()
    missing = subprocess.run(cli("replay", str(tmp_path / "nope")), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "is not a rosbag2 bag" in missing.stderr
    unknown = subprocess.run(cli("record", str(tmp_path / "b"), "--topics", "/cmd_vel", "--duration", "1"),
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and "is not one of the graph's topics" in unknown.stderr
    assert not (tmp_path / "b").exists()
