"""Fuzzed semantic features, images, instructions and action chunks (hypothesis, over real rclpy; the
nodes and profiles: conftest.py and test/conftest.py): each node keeps running, rejects bad input with
a counted reason and takes good input."""

from __future__ import annotations

import math
import struct

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from .support import CASES, JOINTS, Case, node, rejections_from, stamp_now  # noqa: E402


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
    seq = action.store.latest().seq if action.store.latest() else None
    grew = rejections_from(graph, "action", "semantic_features", msg)
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
    grew = rejections_from(graph, "semantic", "image", msg)
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
    grew = rejections_from(graph, "semantic", "instruction", serialized_string(text) if isinstance(text, bytes) else String(data=text))
    # What arrives: a CDR string ends at its first NUL, and rclpy decodes invalid UTF-8 to U+FFFD.
    received = text.split(b"\x00")[0].decode("utf-8", errors="replace") if isinstance(text, bytes) else text.split("\x00")[0]
    fits = kind != "1 MB" and bool(received.strip()) and _printable(received) and _fits(semantic.loop.policy, received)
    assert grew == int(not fits), f"{kind}: {text[:80]!r}"
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
    grew = rejections_from(graph, "visualizer", "action_chunk", msg)
    assert grew == int(defect not in {"none", "no_sfm"}), f"defect {defect}"


