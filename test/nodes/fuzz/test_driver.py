"""The driver's subscriptions, fuzzed (hypothesis, over real rclpy): the sim driver node, configured and
active, on topics of its own (remapped under fuzz/, so the package's other fuzzed nodes never see them).
Whatever arrives on `safe_joint_command`, the arm's target stays a whole, finite command inside the
sim's joint limits, and a malformed one is a counted, logged rejection that leaves the target as it
was; after an e-stop nothing moves the arm until the driver is activated again; an episode reset
outside the sim's seeds is refused and counted, one inside starts that scene."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from ...sim._support import skip_without_sim  # noqa: E402
from .support import CASES, JOINTS, PARAMS, Harness, rejected  # noqa: E402
from .test_joints_and_estop import good_state, joint_messages  # noqa: E402

REMAPS = ("safe_joint_command:=fuzz/driver/command", "estop:=fuzz/driver/estop", "sim/reset_episode:=fuzz/driver/reset_episode",
          "joint_states:=fuzz/driver/joint_states", "sim/world_state:=fuzz/driver/world_state", "diagnostics:=fuzz/driver/diagnostics",
          "episode:=fuzz/driver/episode")


@pytest.fixture(scope="module")
def driver(graph):
    skip_without_sim()
    from std_msgs.msg import Bool, UInt32
    from sensor_msgs.msg import JointState

    from asyncvla_ros.nodes.driver_node import DriverNode

    args = ["--ros-args", "--params-file", str(PARAMS), *(a for r in REMAPS for a in ("-r", r))]
    node = DriverNode(cli_args=args)
    harness = Harness([node])
    probe = graph["probe"].node
    pubs = {"command": probe.create_publisher(JointState, "fuzz/driver/command", 10),
            "estop": probe.create_publisher(Bool, "fuzz/driver/estop", 10),
            "reset": probe.create_publisher(UInt32, "fuzz/driver/reset_episode", 10)}
    try:
        node.trigger_configure()
        node.trigger_activate()
        assert node.active, "the sim driver did not activate"
        graph["probe"].wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30, "the driver's subscriptions matched")
        yield {"node": node, "harness": harness, "pub": pubs}
    finally:
        if node.active:
            node.trigger_deactivate()
        node.trigger_cleanup()
        errors = list(harness.errors)
        harness.close()
        for p in pubs.values():
            probe.destroy_publisher(p)
    assert not errors, "the driver would have died:\n" + "\n".join(errors)


def target(node) -> np.ndarray:
    """The sim arm's current position target (the hold pose until a command is applied)."""
    backend = node.backend
    with backend._lock:
        return (backend._target if backend._target is not None else backend._reading.positions_rad).copy()


def limits(node) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = node.backend._arm.joint_limits_rad
    return np.asarray(lower), np.asarray(upper)


def reactivate(node) -> None:
    node.trigger_deactivate()
    node.trigger_activate()
    assert node.active


@given(case=joint_messages())
def test_the_driver_applies_only_whole_finite_commands_inside_the_joint_limits(driver, case):
    msg, defect = case
    CASES["JointState on safe_joint_command (driver)"][defect] += 1
    node, h = driver["node"], driver["harness"]
    if not node.active:
        reactivate(node)
    before_target, before_rejected, before_applied = target(node), rejected(node), node.counts["applied"]
    h.deliver(driver["pub"]["command"], msg)
    after = target(node)
    lower, upper = limits(node)
    assert np.isfinite(after).all() and (after >= lower).all() and (after <= upper).all(), f"target {after} (defect {defect})"
    # The driver needs each of its joints once, finite and inside the limits; extra names and old stamps
    # are the safety filter's business (it refuses them before they get here).
    refuse = defect in {"missing_joint", "repeated_joint", "length", "nonfinite", "huge"}
    if refuse:
        assert rejected(node) == before_rejected + 1 and node.counts["applied"] == before_applied, f"defect {defect}: {msg}"
        np.testing.assert_array_equal(after, before_target)
    else:
        assert node.counts["applied"] == before_applied + 1, f"defect {defect}: {msg}"
        want = [msg.position[list(msg.name).index(j)] for j in JOINTS]
        np.testing.assert_array_equal(after, want)


ESTOP_OPS = ("command", "estop_true", "estop_false", "reactivate")


@given(ops=st.lists(st.sampled_from(ESTOP_OPS), min_size=1, max_size=8))
def test_after_an_estop_nothing_moves_the_arm_until_the_driver_is_activated_again(driver, ops):
    from std_msgs.msg import Bool

    node, h = driver["node"], driver["harness"]
    CASES["e-stop sequences (driver), by operation"].update(ops)
    if not node.active:
        reactivate(node)
    stopped = False
    for k, op in enumerate(ops):
        if op == "command":
            applied, held = node.counts["applied"], target(node)
            h.deliver(driver["pub"]["command"], good_state(np.full(len(JOINTS), 0.01 * (k + 1))))
            assert node.counts["applied"] == applied + int(not stopped), f"{ops}: command {k} after {'an e-stop' if stopped else 'none'}"
            if stopped:
                np.testing.assert_array_equal(target(node), held)
        elif op in ("estop_true", "estop_false"):
            h.deliver(driver["pub"]["estop"], Bool(data=op == "estop_true"))
            stopped = stopped or op == "estop_true"  # False releases nothing: only reactivating does
            assert node.active == (not stopped), f"{ops}: after {op}"
        else:
            reactivate(node)
            stopped = False


@given(seed=st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 2**32 - 1), st.sampled_from([0, 2**31 - 1, 2**31, 2**32 - 1])))
@hypothesis.settings(max_examples=30)  # each accepted seed rebuilds the scene
def test_an_episode_reset_starts_a_scene_or_is_refused_and_counted(driver, seed):
    from std_msgs.msg import UInt32

    node, h = driver["node"], driver["harness"]
    CASES["UInt32 on sim/reset_episode (driver)"]["in range" if seed < 2**31 else "out of range"] += 1
    before_seed, before_rejected = node.sim_episode_seed, rejected(node)
    h.deliver(driver["pub"]["reset"], UInt32(data=seed))
    if seed < 2**31:
        assert node.sim_episode_seed == seed and rejected(node) == before_rejected
        # The arm holds its new home pose until a command arrives.
        np.testing.assert_allclose(target(node), node.backend._reading.positions_rad, atol=0.05)
    else:
        assert node.sim_episode_seed == before_seed and rejected(node) == before_rejected + 1
