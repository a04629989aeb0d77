"""Fuzzed message boundaries: the subscriptions of the safety filter, action, semantic and visualizer
nodes, over real rclpy, with messages that hypothesis generates.

The nodes run in this process (as `policy_node` runs two of them) on one executor thread, built from
config/sim.yaml; a probe node publishes each generated message through DDS and the test waits until
every subscription on that topic has run its callback. For every message:

- the nodes keep running: no exception escapes a callback or rclpy's take (in a node process either
  would end the node);
- a message that is bad by construction is rejected and counted (the node's `rejections`, or a refusal
  in the safety filter's counts), and a good one is not;
- an independent check of everything the filter publishes on `safe_joint_command` finds each command
  inside the joint limits and within one max step of the joint state sent before it;
- sequences of e-stop operations (the topic, true and false; the service, latch and release) with
  commands between them: nothing passes while the e-stop is latched but the one command that holds the
  arm where it is.

Profiles (test/conftest.py): "ci", the default (a bounded number of examples per message type,
derandomized, so a run is repeatable), and "fuzz" (`pytest --hypothesis-profile fuzz`, many more, random).
The number of generated cases per message type and what each defect kind did is printed.
"""

from __future__ import annotations

import math
import struct
import threading
import time
import traceback
from collections import Counter, defaultdict

import numpy as np
import pytest
import yaml

from ..ros_support import REPO, Probe, require_ros_messages

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

PARAMS = REPO / "config" / "sim.yaml"
SAFETY = yaml.safe_load(PARAMS.read_text())["safety_filter"]["ros__parameters"]
JOINTS = tuple(SAFETY["joint_names"])
LOWER, UPPER, STEP = (np.asarray(SAFETY[k], dtype=float) for k in ("position_lower_rad", "position_upper_rad", "max_step_rad"))
TIMEOUT_S = 20.0  # for one message to be handled: generous, the machine may be busy
CASES: dict[str, Counter] = defaultdict(Counter)  # message type -> defect kind -> cases run


class Case(tuple):
    """(message, defect), shown in hypothesis' reports by its defect and a short prefix of the message."""

    def __new__(cls, msg, defect: str):
        return super().__new__(cls, (msg, defect))

    def __repr__(self) -> str:
        text = repr(self[0])
        return f"Case({self[1]!r}, {text[:600]}{'...' if len(text) > 600 else ''})"


class Harness:
    """The nodes under test on one executor thread, each subscription's callbacks counted."""

    def __init__(self, nodes) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.subscription import Subscription

        self.nodes = {n.get_name(): n for n in nodes}
        self.executor = SingleThreadedExecutor()
        self.handled: Counter = Counter()  # (node, topic as subscribed) -> callbacks run
        self.subscribers: dict[str, list[tuple[str, str]]] = defaultdict(list)  # resolved topic -> keys
        self.errors: list[str] = []
        for node in nodes:
            self.executor.add_node(node)
            for sub in node.subscriptions:
                key = (node.get_name(), sub.topic_name)
                self.subscribers[sub.topic_name].append(key)
                sub.callback = self._counted(sub.callback, key, sub._callback_type is Subscription.CallbackType.WithMessageInfo)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _counted(self, inner, key, with_info: bool):
        def count(*args):
            try:
                inner(*args)
            finally:
                self.handled[key] += 1

        if with_info:
            return lambda msg, info: count(msg, info)
        return lambda msg: count(msg)

    def _spin(self) -> None:
        while self.running:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # in a node process this would end the node
                self.errors.append(traceback.format_exc())

    def deliver(self, publisher, msg) -> None:
        """Publish `msg` (a message or its serialized bytes) and wait until every subscription on the
        topic has handled it."""
        keys = self.subscribers[publisher.topic_name]
        assert keys, f"nobody subscribes {publisher.topic_name}"
        before = {k: self.handled[k] for k in keys}
        publisher.publish(msg)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not self.errors:
            if all(self.handled[k] > before[k] for k in keys):
                return
            time.sleep(0.002)
        assert not self.errors, "a node would have died:\n" + "\n".join(self.errors)
        late = [k for k in keys if self.handled[k] == before[k]]
        raise AssertionError(f"not handled within {TIMEOUT_S} s by {late}")

    def close(self) -> None:
        self.running = False
        self.thread.join(10)
        for node in self.nodes.values():
            if hasattr(node, "close"):
                node.close()
            node.destroy_node()


class Graph(dict):
    """What the tests use (a dict), shown briefly in hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<graph of {sorted(self['harness'].nodes)}>"


@pytest.fixture(scope="module")
def graph():
    require_ros_messages()
    pytest.importorskip("torch")
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool, String

    from asyncvla_ros.msg import ActionChunk, SemanticFeatures
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
    }
    probe.record(JointState, "safe_joint_command", 100)
    probe.wait_for(lambda: all(p.get_subscription_count() > 0 for name, p in publishers.items()
                               if name != "action_chunk" or "visualizer" in harness.nodes)
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


def node(graph, name: str):
    nodes = graph["harness"].nodes
    if name not in nodes:
        pytest.skip(f"the {name} node could not be built here")
    return nodes[name]


def stamp_now():
    from asyncvla_ros.nodes.conversions import to_time

    return to_time(time.time_ns())


# -- joint states and commands -----------------------------------------------------------------------

JOINT_DEFECTS = ("none", "extra_joint", "missing_joint", "repeated_joint", "length", "nonfinite", "huge", "stamp")
FAR_STAMPS = ((0, 0), (1, 0), (2**31 - 1, 999_999_999), (int(time.time()) - 10**8, 0), (int(time.time()) + 10**8, 0))


@st.composite
def joint_messages(draw, defects=JOINT_DEFECTS):
    """(JointState, defect): a state or command over the robot's joints, in any order, at most one defect."""
    from sensor_msgs.msg import JointState

    defect = draw(st.sampled_from(defects))
    # Near the measured state (0) so that a good command passes unaltered or clamped by max_step.
    values = [draw(st.floats(max(lo, -0.5), min(hi, 0.5))) for lo, hi in zip(LOWER, UPPER)]
    order = draw(st.permutations(range(len(JOINTS))))
    names, positions = [JOINTS[i] for i in order], [values[i] for i in order]
    i = draw(st.integers(0, len(JOINTS) - 1))
    msg = JointState()
    msg.header.stamp = stamp_now()
    if defect == "extra_joint":
        names.append(draw(st.text(min_size=1, max_size=30).filter(lambda n: n not in JOINTS)))
        positions.append(draw(st.floats(-1, 1)))
    elif defect == "missing_joint":
        del names[i], positions[i]
    elif defect == "repeated_joint":
        names.append(names[i])
        positions.append(positions[i] + draw(st.floats(0.01, 0.1)))
    elif defect == "length":
        if draw(st.booleans()):
            positions.append(0.0)
        else:
            positions.pop()
    elif defect == "nonfinite":
        positions[i] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif defect == "huge":
        j = order[i]
        reach = draw(st.floats(1.0, 1e300))
        positions[i] = float(UPPER[j] + reach) if draw(st.booleans()) else float(LOWER[j] - reach)
    elif defect == "stamp":
        sec, nanosec = draw(st.sampled_from(FAR_STAMPS))
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.name, msg.position = names, positions
    return Case(msg, defect)


def good_state(positions=None):
    from sensor_msgs.msg import JointState

    msg = JointState(name=list(JOINTS), position=[0.0] * len(JOINTS) if positions is None else list(positions))
    msg.header.stamp = stamp_now()
    return msg


def check_safe_commands(graph, since: float, state) -> int:
    """The independent probe: what the filter let through since `since` is finite, names every joint
    once, lies inside the limits and within one max step of `state` (config order). Returns how many."""
    out = graph["probe"].messages("safe_joint_command", since)
    for msg in out:
        assert sorted(msg.name) == sorted(JOINTS), msg.name
        q = np.array([msg.position[list(msg.name).index(j)] for j in JOINTS])
        assert np.isfinite(q).all(), q
        assert (q >= LOWER - 1e-12).all() and (q <= UPPER + 1e-12).all(), f"outside the limits: {q}"
        assert (np.abs(q - state) <= STEP + 1e-9).all(), f"more than max_step from {state}: {q}"
    return len(out)


@given(case=joint_messages())
def test_joint_states_reach_every_node_and_only_good_ones_are_used(graph, case):
    msg, defect = case
    CASES["JointState on joint_states"][defect] += 1
    h = graph["harness"]
    safety = node(graph, "safety_filter")
    # Each node's rules: the filter wants exactly the robot's joints and a plausible state; the action
    # node needs its joints, once each (others are ignored); the visualizer draws any finite state.
    must_reject = {
        "safety_filter": {"extra_joint", "missing_joint", "repeated_joint", "length", "nonfinite", "huge"},
        "action": {"missing_joint", "repeated_joint", "length", "nonfinite"},
        "visualizer": {"length", "nonfinite"},
        "semantic": {"missing_joint", "repeated_joint", "length", "nonfinite"},
    }
    before = {name: rejected(n) for name, n in h.nodes.items()}
    h.deliver(graph["pub"]["joint_states"], msg)
    for name in {node_name for node_name, _ in h.subscribers["/joint_states"]}:
        n = h.nodes[name]
        grew = rejected(n) - before[name]
        assert grew == (defect in must_reject[name]), f"{name}: defect {defect}, rejections +{grew}: {msg}"
    # A refused state leaves the filter checking against the last good one.
    h.deliver(graph["pub"]["joint_states"], good_state())
    assert safety.filter._state is not None and np.array_equal(safety.filter._state, np.zeros(len(JOINTS)))


def rejected(n) -> int:
    """What a node has rejected so far: its `rejections`, or the safety filter's refusals and state problems."""
    if n.get_name() == "safety_filter":
        return sum(n.filter.counts[k] for k in ("dimension", "unknown_joint", "nan", "implausible_state")) + n.filter.refused
    return n.rejections.count


@given(case=joint_messages(), state=st.tuples(*(st.floats(max(lo, -0.3), min(hi, 0.3)) for lo, hi in zip(LOWER, UPPER))))
def test_commands_through_the_safety_filter_are_refused_or_made_safe(graph, case, state):
    msg, defect = case
    CASES["JointState on joint_command"][defect] += 1
    h, safety = graph["harness"], node(graph, "safety_filter")
    state = np.asarray(state)
    h.deliver(graph["pub"]["joint_states"], good_state(state))
    if defect != "stamp":
        msg.header.stamp = stamp_now()  # fresh, however long generating it took
    since, refused = time.monotonic(), safety.filter.refused
    h.deliver(graph["pub"]["joint_command"], msg)
    refuse = defect in {"extra_joint", "missing_joint", "repeated_joint", "length", "nonfinite", "stamp"}
    assert safety.filter.refused - refused == int(refuse), f"defect {defect}: {msg}"
    if not refuse:  # a huge target is clamped, not refused
        graph["probe"].wait_for(lambda: graph["probe"].messages("safe_joint_command", since), 10, "the safe command")
    assert check_safe_commands(graph, since, state) == int(not refuse)


@given(case=joint_messages(defects=("none", "missing_joint", "repeated_joint", "length", "nonfinite", "stamp")))
def test_the_action_node_takes_only_well_formed_safe_commands_into_its_history(graph, case):
    msg, defect = case
    CASES["JointState on safe_joint_command (action)"][defect] += 1
    action = node(graph, "action")
    before = action.rejections.count
    graph["harness"].deliver(graph["pub"]["action_safe_command"], msg)
    assert action.rejections.count - before == int(defect in {"missing_joint", "repeated_joint", "length", "nonfinite"})


# -- semantic features -------------------------------------------------------------------------------

FEATURE_DEFECTS = ("none", "model_id", "kind", "transport", "dtype_name", "shape", "bytes", "missing_tensor",
                   "token_count", "nonfinite", "relabelled_dtype")


@st.composite
def feature_messages(draw, base):
    """(SemanticFeatures, defect): the encoder's own message for one observation, with at most one defect."""
    import copy

    from asyncvla_ros.msg import SemanticFeatures

    defect = draw(st.sampled_from(FEATURE_DEFECTS))
    msg = copy.deepcopy(base)
    msg.seq = draw(st.integers(0, 2**63 - 1))
    blobs = list(msg.tensors)
    float_blobs = [b for b in blobs if b.dtype == "float32"]
    blob = draw(st.sampled_from(blobs))
    if defect == "model_id":
        msg.model_id = draw(st.text(max_size=40).filter(lambda s: s != base.model_id))
    elif defect == "kind":
        msg.feature_kind = draw(st.text(max_size=40).filter(lambda s: s != base.feature_kind))
    elif defect == "transport":
        msg.transport = SemanticFeatures.TRANSPORT_IN_PROCESS  # no payload, and this action node is not co-located
    elif defect == "dtype_name":
        blob.dtype = draw(st.sampled_from(["float64", "uint8", "complex64", "", "float32 ", "int32"]))
    elif defect == "shape":
        shape = list(blob.shape)
        if shape and draw(st.booleans()):
            k = draw(st.integers(0, len(shape) - 1))
            shape[k] = draw(st.integers(0, 2**32 - 1).filter(lambda v, old=shape[k]: v != old))
        else:
            shape.append(draw(st.integers(2, 2**16)))
        blob.shape = shape
    elif defect == "bytes":
        data = bytes(blob.data)
        cut = draw(st.integers(1, max(1, len(data))))
        blob.data = data[:-cut] if draw(st.booleans()) and data else data + bytes(cut)
    elif defect == "missing_tensor":
        msg.tensors = [b for b in blobs if b is not blob]
    elif defect == "token_count":
        target = next(b for b in blobs if b.name == "num_prefix_tokens")
        target.data = struct.pack("<q", draw(st.sampled_from([0, -1, 10**6, 2**62])))
    elif defect == "nonfinite":
        target = draw(st.sampled_from(float_blobs))
        values = bytearray(target.data)
        k = draw(st.integers(0, len(values) // 4 - 1))
        values[4 * k: 4 * k + 4] = struct.pack("<f", draw(st.sampled_from([math.nan, math.inf, -math.inf])))
        target.data = bytes(values)
    elif defect == "relabelled_dtype":  # the same bytes read as half precision: twice the elements
        target = draw(st.sampled_from(float_blobs))
        target.dtype = draw(st.sampled_from(["float16", "bfloat16"]))
        target.shape = [*target.shape[:-1], 2 * target.shape[-1]]
    return Case(msg, defect)


@given(data=st.data())
def test_semantic_features_that_do_not_fit_the_policy_are_refused_before_they_are_cached(graph, data):
    msg, defect = data.draw(feature_messages(graph["features"]))
    CASES["SemanticFeatures on semantic_features (action)"][defect] += 1
    action = node(graph, "action")
    before, seq = action.rejections.count, action.store.latest().seq if action.store.latest() else None
    graph["harness"].deliver(graph["pub"]["semantic_features"], msg)
    grew = action.rejections.count - before
    assert grew == int(defect != "none"), f"defect {defect}: rejections +{grew}"
    latest = action.store.latest()
    if defect == "none":
        assert latest is not None and latest.seq == msg.seq
    else:
        assert (latest.seq if latest else None) == seq  # nothing of it cached


# -- images and instructions ----------------------------------------------------------------------------

IMAGE_DEFECTS = ("none", "bgr8", "mono8", "padded_rows", "encoding", "short_step", "bytes", "empty", "zero_size", "claimed_huge")


@st.composite
def image_messages(draw):
    from sensor_msgs.msg import Image

    defect = draw(st.sampled_from(IMAGE_DEFECTS))
    h, w = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    encoding = {"bgr8": "bgr8", "mono8": "mono8"}.get(defect, "rgb8")
    channels = 1 if encoding == "mono8" else 3
    step = w * channels + (draw(st.integers(1, 64)) if defect == "padded_rows" else 0)
    size = h * step
    msg = Image(height=h, width=w, encoding=encoding, step=step)
    msg.header.stamp = stamp_now()
    if defect == "encoding":
        msg.encoding = draw(st.sampled_from(["16UC1", "rgba8", "yuv422", "RGB8", "", "jpeg"]) | st.text(max_size=20))
    elif defect == "short_step":
        msg.step = draw(st.integers(0, w * channels - 1))
        size = h * msg.step
    elif defect == "bytes":
        size = draw(st.integers(0, 2 * size).filter(lambda n, s=size: n != s))
    elif defect == "empty":
        size = 0
    elif defect == "zero_size":
        if draw(st.booleans()):
            msg.height = 0
        else:
            msg.width = 0
    elif defect == "claimed_huge":  # 10k x 10k claimed, a small buffer sent
        msg.height = msg.width = 10_000
        msg.step = 30_000
    msg.data = bytes(draw(st.binary(min_size=min(size, 64), max_size=min(size, 64))).ljust(size, b"\x7f"))
    return Case(msg, defect)


@given(case=image_messages())
def test_images_of_every_shape_and_encoding_are_decoded_or_refused(graph, case):
    msg, defect = case
    CASES["Image on front/image_raw (semantic)"][defect] += 1
    semantic = node(graph, "semantic")
    before = semantic.rejections.count
    graph["harness"].deliver(graph["pub"]["image"], msg)
    grew = semantic.rejections.count - before
    assert grew == int(defect not in {"none", "bgr8", "mono8", "padded_rows"}), f"defect {defect}: {msg.encoding} {msg.width}x{msg.height} step {msg.step}"


def serialized_string(data: bytes) -> bytes:
    """std_msgs/String in CDR (little endian) with arbitrary bytes: what a foreign publisher may send."""
    return b"\x00\x01\x00\x00" + struct.pack("<I", len(data) + 1) + data + b"\x00"


@given(text=st.one_of(st.just(""), st.text(max_size=200), st.just("x" * 1_000_000),
                      st.binary(min_size=1, max_size=50).filter(lambda b: not _utf8(b))))
def test_instructions_empty_huge_or_not_utf8_are_refused_and_the_last_good_one_stays(graph, text):
    from std_msgs.msg import String

    semantic = node(graph, "semantic")
    good = "put the red cube in the blue area"
    graph["harness"].deliver(graph["pub"]["instruction"], String(data=good))
    assert semantic.loop.instruction == good
    kind = "bytes" if isinstance(text, bytes) else ("empty" if not text.strip() else ("1 MB" if len(text) > 10_000 else "text"))
    CASES["String on instruction (semantic)"][kind] += 1
    before = semantic.rejections.count
    graph["harness"].deliver(graph["pub"]["instruction"], serialized_string(text) if isinstance(text, bytes) else String(data=text))
    # What arrives: a CDR string ends at its first NUL, and rclpy decodes invalid UTF-8 to U+FFFD.
    received = text.split(b"\x00")[0].decode("utf-8", errors="replace") if isinstance(text, bytes) else text.split("\x00")[0]
    fits = kind != "1 MB" and bool(received.strip()) and _printable(received) and _fits(semantic.loop.policy, received)
    assert semantic.rejections.count - before == int(not fits), f"{kind}: {text[:80]!r}"
    assert semantic.loop.instruction == (received.strip() if fits else good)


def _printable(text: str) -> bool:
    """No control character (tabs and line breaks aside), surrogate or U+FFFD (rclpy's stand-in for
    invalid UTF-8)."""
    import unicodedata

    return not any(c == "\ufffd" or (unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r") for c in text.strip())


def _fits(policy, text: str) -> bool:
    try:
        policy.check_instruction(text.strip())
        return True
    except ValueError:
        return False


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# -- action chunks for the visualizer ----------------------------------------------------------------

CHUNK_DEFECTS = ("none", "no_sfm", "horizon", "action_dim", "joint_names", "actions", "confidence", "regenerated",
                 "period", "nonfinite", "unknown_joints", "huge_horizon")


@st.composite
def chunk_messages(draw):
    from asyncvla_ros.msg import ActionChunk

    defect = draw(st.sampled_from(CHUNK_DEFECTS))
    horizon, dim = draw(st.integers(1, 12)), len(JOINTS)
    values = draw(st.lists(st.floats(-1.5, 1.5), min_size=horizon * dim, max_size=horizon * dim))
    msg = ActionChunk(chunk_id=draw(st.integers(0, 2**32)), horizon=horizon, action_dim=dim, joint_names=list(JOINTS),
                      step_period_s=0.05, mode="asyncvla", actions=values, sfm_actions=list(values),
                      confidence=[0.5] * horizon, regenerated=[False] * horizon)
    msg.header.stamp = stamp_now()
    if defect == "no_sfm":
        msg.sfm_actions, msg.confidence, msg.regenerated = [], [], []
    elif defect == "horizon":
        msg.horizon = draw(st.integers(0, 2**32 - 1).filter(lambda v: v != horizon))
    elif defect == "action_dim":
        msg.action_dim = draw(st.integers(0, 2**32 - 1).filter(lambda v: v != dim))
    elif defect == "joint_names":
        msg.joint_names = list(JOINTS)[: draw(st.integers(0, dim - 1))]
    elif defect == "actions":
        msg.actions = values[: draw(st.integers(0, len(values) - 1))]
    elif defect == "confidence":
        msg.confidence = [0.5] * draw(st.integers(1, 30).filter(lambda n: n != horizon))
    elif defect == "regenerated":
        msg.regenerated = [True] * draw(st.integers(1, 30).filter(lambda n: n != horizon))
    elif defect == "period":
        msg.step_period_s = draw(st.sampled_from([0.0, -0.05, math.nan, math.inf]))
    elif defect == "nonfinite":
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from([math.nan, math.inf]))
        msg.actions = values
    elif defect == "unknown_joints":
        msg.joint_names = [f"not_{j}" for j in JOINTS]
    elif defect == "huge_horizon":  # consistent, but far beyond any policy's chunk
        msg.horizon = 100_000
        msg.actions = msg.sfm_actions = [0.0] * (100_000 * dim)
        msg.confidence, msg.regenerated = [0.5] * 100_000, [False] * 100_000
    return Case(msg, defect)


@given(case=chunk_messages())
def test_the_visualizer_draws_good_chunks_and_refuses_the_rest(graph, case):
    msg, defect = case
    CASES["ActionChunk on action_chunk (visualizer)"][defect] += 1
    visualizer = node(graph, "visualizer")
    before = visualizer.rejections.count
    graph["harness"].deliver(graph["pub"]["action_chunk"], msg)
    assert visualizer.rejections.count - before == int(defect not in {"none", "no_sfm"}), f"defect {defect}"


# -- the e-stop topic and service ----------------------------------------------------------------------

ESTOP_OPS = ("command", "estop_topic_true", "estop_topic_false", "latch_service", "release_service")


@given(ops=st.lists(st.sampled_from(ESTOP_OPS), min_size=1, max_size=10))
def test_no_command_passes_while_the_estop_is_latched_however_it_is_toggled(graph, ops):
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    h, probe, safety = graph["harness"], graph["probe"], node(graph, "safety_filter")
    CASES["e-stop sequences (safety_filter), by operation"].update(ops)
    state = np.zeros(len(JOINTS))
    probe.call(SetBool, "set_estop", SetBool.Request(data=False))
    latched = False
    try:
        for op in ops:
            h.deliver(graph["pub"]["joint_states"], good_state(state))
            since = time.monotonic()
            if op == "command":
                msg = good_state(state + 0.01)
                h.deliver(graph["pub"]["joint_command"], msg)
                if not latched:
                    probe.wait_for(lambda: probe.messages("safe_joint_command", since), 10, "the command let through")
                out = probe.messages("safe_joint_command", since)
                assert len(out) == int(not latched), f"{op} with the e-stop {'latched' if latched else 'released'}: {len(out)} out"
                continue
            if op in ("estop_topic_true", "estop_topic_false"):
                h.deliver(graph["pub"]["estop"], Bool(data=op == "estop_topic_true"))
                engaged = op == "estop_topic_true"
            else:
                reply = probe.call(SetBool, "set_estop", SetBool.Request(data=op == "latch_service"))
                assert reply.success
                engaged = op == "latch_service"
                latched = engaged if op == "latch_service" else False
            if engaged:
                latched = True
                # The one command a latching e-stop sends: stay where the arm is.
                probe.wait_for(lambda: probe.messages("safe_joint_command", since), 10, "the stop command")
                (stop,) = probe.messages("safe_joint_command", since)
                assert np.allclose([stop.position[list(stop.name).index(j)] for j in JOINTS], state)
            assert safety.filter.estop_latched == latched, f"after {op}"
    finally:
        probe.call(SetBool, "set_estop", SetBool.Request(data=False))

