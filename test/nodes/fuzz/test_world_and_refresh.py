"""Fuzzed sim world states (the camera node's and the expert demonstrator's subscription) and refresh
requests (the semantic node's), over real rclpy (the nodes and profiles: conftest.py and
test/conftest.py): each node keeps running; the camera refuses a pose that is not one of the scene's
with a counted reason and keeps showing the last good one; the expert refuses it too, and a task it
does not know, and sends no command for either; the semantic node passes on a refresh request's
reason as one bounded line."""

from __future__ import annotations

import math
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from .support import CASES, TIMEOUT_S, Case, node, rejections_from, stamp_now  # noqa: E402

WORLD_DEFECTS = ("none", "qpos_length", "mocap_length", "mocap_bodies", "nonfinite", "huge", "stamp_zero", "stamp_future",
                 "instruction")
# A stamp is the image's to carry (the semantic node judges its age); the camera renders any task's scene.
ACCEPTED = {"none", "stamp_zero", "stamp_future", "instruction"}
EXPERT_ACCEPTED = ACCEPTED - {"instruction"}  # the expert demonstrates only the tasks it knows


@st.composite
def world_states(draw, model, defect: str):
    """(SimWorldState, defect): the scene's rest pose, moved a little, with `defect`."""
    import numpy as np

    from asyncvla_ros.msg import SimWorldState
    from asyncvla_ros.nodes.conversions import to_time
    from asyncvla_ros.sim._mujoco import mujoco

    data = mujoco.MjData(model)
    qpos = data.qpos + np.asarray(draw(st.lists(st.floats(-0.05, 0.05), min_size=model.nq, max_size=model.nq)))
    pos, quat = data.mocap_pos.ravel().tolist(), data.mocap_quat.ravel().tolist()
    msg = SimWorldState(sim_time_s=draw(st.floats(0, 1e4)), qpos=qpos.tolist(), mocap_pos=pos, mocap_quat=quat,
                        episode_seed=draw(st.integers(0, 2**32 - 1)), instruction="put the red cube in the blue area")
    msg.header.stamp = stamp_now()
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if defect == "qpos_length":
        n = draw(st.integers(0, 3 * model.nq).filter(lambda k: k != model.nq))
        msg.qpos = (qpos.tolist() * 3)[:n]
    elif defect == "mocap_length":  # not whole poses
        if draw(st.booleans()):
            msg.mocap_pos = pos[:-1]
        else:
            msg.mocap_quat = quat + [0.0]
    elif defect == "mocap_bodies":  # whole poses, of a scene with one more body
        msg.mocap_pos, msg.mocap_quat = pos + [0.0, 0.0, 0.0], quat + [1.0, 0.0, 0.0, 0.0]
    elif defect == "nonfinite":
        field = draw(st.sampled_from(["qpos", "mocap_pos", "mocap_quat", "sim_time_s"]))
        if field == "sim_time_s":
            msg.sim_time_s = bad
        else:
            values = list(getattr(msg, field))
            values[draw(st.integers(0, len(values) - 1))] = bad
            setattr(msg, field, values)
    elif defect == "huge":
        values = list(msg.qpos)
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from([1e4, -1e9, 1e300]))
        msg.qpos = values
    elif defect == "stamp_zero":
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
    elif defect == "stamp_future":
        msg.header.stamp = to_time(time.time_ns() + 10**9 * draw(st.integers(60, 10**8)))
    elif defect == "instruction":  # not one of the task's: empty, unknown colours or area, any text, 1 MB
        msg.instruction = draw(st.one_of(st.just(""), st.just("put the purple cube in the blue area"),
                                         st.text(max_size=200).filter(lambda t: not t.startswith("put the")),
                                         st.just("put the red cube in the " + "x" * 1_000_000)))
    return Case(msg, defect)


# Each defect is its own test, so that every one runs whatever hypothesis draws: a quarter of the
# profile's examples each (25 in CI, 250 with --hypothesis-profile fuzz).
@pytest.mark.parametrize("defect", WORLD_DEFECTS)
@settings(max_examples=max(1, settings().max_examples // 4))
@given(data=st.data())
def test_the_camera_renders_scene_poses_and_refuses_the_rest(graph, defect, data):
    import numpy as np

    from asyncvla_ros.nodes.conversions import from_time

    camera = node(graph, "front_camera")
    msg, _ = data.draw(world_states(camera.view.model, defect))
    CASES["SimWorldState on sim/world_state (camera)"][defect] += 1
    with camera.lock:
        before = camera.snapshot
    grew = rejections_from(graph, "front_camera", "world_state", msg)
    assert grew == int(defect not in ACCEPTED), f"defect {defect}"
    with camera.lock:
        now = camera.snapshot
    if defect in ACCEPTED:
        np.testing.assert_array_equal(now.qpos, np.asarray(msg.qpos))
        stamp = from_time(msg.header.stamp)  # the camera's timer renders it and stamps the image with it
        deadline = time.monotonic() + TIMEOUT_S
        while camera.last_rendered_ns != stamp and time.monotonic() < deadline:
            time.sleep(0.01)
        assert camera.last_rendered_ns == stamp, "the accepted pose was not rendered"
    else:
        assert now is before  # the last good pose stays


@pytest.mark.parametrize("defect", WORLD_DEFECTS)
@settings(max_examples=max(1, settings().max_examples // 4))
@given(data=st.data(), active=st.booleans())
def test_the_expert_demonstrator_commands_only_on_scene_poses_of_known_tasks(graph, defect, data, active):
    import numpy as np
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    teleop = node(graph, "teleop")
    level = DiagnosticStatus.OK if active else DiagnosticStatus.WARN  # the driver's: active, or not
    graph["harness"].deliver(graph["pub"]["teleop_diagnostics"], DiagnosticArray(status=[DiagnosticStatus(name="driver", level=level)]))
    msg, _ = data.draw(world_states(teleop.source.arm.model, defect))
    CASES["SimWorldState on sim/world_state (teleop)"][defect] += 1
    probe, before = graph["probe"], teleop.commands
    received = len(probe.messages("fuzz/teleop_command"))
    grew = rejections_from(graph, "teleop", "world_state", msg)
    assert grew == int(defect not in EXPERT_ACCEPTED), f"defect {defect}"
    sent = teleop.commands - before
    assert sent == int(active and defect in EXPERT_ACCEPTED), "a command only for a scene pose, while the driver is active"
    if sent:
        probe.wait_for(lambda: len(probe.messages("fuzz/teleop_command")) > received, TIMEOUT_S, "the expert's command")
        command = probe.messages("fuzz/teleop_command")[-1]
        assert list(command.name) == list(teleop.source.joint_names)
        assert np.isfinite(command.position).all()


@given(reason=st.one_of(st.just(""), st.text(max_size=300), st.just("x" * 1_000_000)),
       confidence=st.floats(allow_nan=True, allow_infinity=True, width=32), chunk_id=st.integers(0, 2**64 - 1))
def test_a_refresh_request_asks_for_one_encode_with_a_bounded_printable_reason(graph, reason, confidence, chunk_id):
    from asyncvla_ros.msg import RefreshRequest
    from asyncvla_ros.nodes.semantic_node import MAX_REASON_CHARS

    semantic = node(graph, "semantic")
    CASES["RefreshRequest on semantic_refresh (semantic)"]["1 MB" if len(reason) > 10_000 else ("empty" if not reason else "text")] += 1
    msg = RefreshRequest(chunk_id=chunk_id, confidence=confidence, recent_level=confidence, reason=reason)
    msg.header.stamp = stamp_now()
    assert rejections_from(graph, "semantic", "semantic_refresh", msg) == 0  # a request is never bad input
    pending = semantic.loop.pending_refresh  # no frames reach this node unless a test sends them: still pending
    assert pending and len(pending) <= MAX_REASON_CHARS and pending.isprintable()
    received = reason.split("\x00")[0]  # a CDR string ends at its first NUL
    if received and len(received) <= MAX_REASON_CHARS and received.isprintable():
        assert pending == received
