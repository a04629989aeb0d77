"""Fuzzed joint states and commands, and e-stop sequences (hypothesis, over real rclpy; the nodes and
profiles: conftest.py and test/conftest.py). Every node that subscribes joint_states keeps running and
rejects by its own rules; everything the safety filter lets through is inside the joint limits and
within one max step of the state sent before it; nothing passes while the e-stop is latched but the
one command that holds the arm."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from .support import CASES, JOINTS, LOWER, STEP, UPPER, Case, node, rejected, rejections_from, stamp_now  # noqa: E402


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
    grew = rejections_from(graph, "action", "action_safe_command", msg)
    assert grew == int(defect in {"missing_joint", "repeated_joint", "length", "nonfinite"}), f"defect {defect}"



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

