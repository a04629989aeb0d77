"""The whole graph on the embedded sim, every node its own process over real rclpy on loopback.

Separate processes (semantic features travel inline on the topic) and co-located semantic + action
(in-process hand-over). Asserted over 20 s: every command the action node sends reaches the driver or
is refused with a safety event; commands flow at no less than half the control rate (the rate itself
is the machine's: bench-graph measures it); every chunk has L confidences in (0, 1) and a mask of
length L; the semantic age stays under its limit; the arm moves. Then failures: a camera killed and
restarted, the semantic node killed and restarted, the driver killed.
"""

import signal
import time

import numpy as np
import pytest

from ..sim._support import skip_without_sim
from ..ros_support import MIN_RATE_SHARE, REPO, LaunchedGraph, NodeProcess, Probe, command_flow, require_ros_messages

PARAMS = REPO / "config" / "sim.yaml"
RATE_HZ = 20.0
PERIOD_S = 1.0 / RATE_HZ
WINDOW_S = 20.0
MAX_SEMANTIC_AGE_S = 1.0  # config/sim.yaml action.max_semantic_age_s
MAX_STATE_AGE_S = 0.25  # config/sim.yaml action.max_state_age_s


class RunningGraph(LaunchedGraph):
    def __init__(self, colocated: bool, log_dir) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        from asyncvla_ros.launch_graph import LaunchArgs, graph
        from asyncvla_ros.msg import ActionChunk, SafetyEvent

        self.log_dir = log_dir
        self.probe = Probe("e2e_probe")
        for topic, kind in (("safe_joint_command", JointState), ("joint_command", JointState), ("joint_states", JointState),
                            ("action_chunk", ActionChunk), ("safety_events", SafetyEvent), ("diagnostics", DiagnosticArray)):
            self.probe.record(kind, topic)
        self.specs = {s.name: s for s in graph(LaunchArgs(colocated=colocated))}
        self.start(self.specs.values(), PARAMS, log_dir, 120)

    def restart(self, name: str) -> None:
        self.procs[name] = NodeProcess(self.specs[name], PARAMS, self.log_dir)

    def diagnostics(self, name: str, since: float) -> list:
        return [s for m in self.probe.messages("diagnostics", since) for s in m.status if s.name == name]



@pytest.fixture(scope="module", params=[False, True], ids=["separate", "colocated"])
def running(request, tmp_path_factory):
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("torch")
    g = RunningGraph(request.param, tmp_path_factory.mktemp("graph"))
    yield g
    g.close()


def positions(msg, names=None) -> np.ndarray:
    return np.asarray(msg.position)


def test_graph_runs_at_control_rate_with_complete_chunks(running):
    probe = running.probe
    t0 = time.monotonic()
    states_before = positions(probe.messages("joint_states")[-1])
    time.sleep(WINDOW_S)
    flow = command_flow(probe, t0, t0 + WINDOW_S - 0.5)  # the last 0.5 s of commands may still be in flight
    commands = probe.messages("safe_joint_command", t0)
    chunks = probe.messages("action_chunk", t0)
    rate = len(commands) / WINDOW_S
    print(f"\n{rate:.1f} Hz of commands reached the driver, {len(chunks) / WINDOW_S:.1f} Hz of chunks; {flow}")
    assert flow["lost"] <= 0, f"commands neither passed nor refused: {flow}\n{running.logs()}"
    assert rate >= MIN_RATE_SHARE * RATE_HZ, f"{rate:.1f} Hz of commands reached the driver\n{running.logs()}"
    assert len(chunks) >= MIN_RATE_SHARE * RATE_HZ * WINDOW_S
    for c in chunks:
        assert len(c.confidence) == c.horizon and len(c.regenerated) == c.horizon
        assert all(0.0 < p < 1.0 for p in c.confidence)
        assert len(c.actions) == len(c.sfm_actions) == c.horizon * c.action_dim
        # Age = the action node's joint-state stamp minus the semantics' frame stamp. Cameras and joint
        # states arrive on separate topics, so under load a frame can be newer than the latest state
        # by a state period or, on a loaded machine where the action node's state callback waits behind a
        # plan, a few (seen: 2 periods in a fresh-clone run): slightly negative, never more than that.
        assert -3 * PERIOD_S - 0.01 <= c.semantic_age_s < MAX_SEMANTIC_AGE_S
    moved = np.abs(positions(probe.messages("joint_states")[-1]) - states_before).max()
    assert moved > 0.01, f"the arm did not move ({moved} rad)"
    assert_acting(running.diagnostics("action", t0))


def assert_acting(action_statuses: list) -> None:
    """After the first, every action-node status says it acts, or holds on a late joint state: the
    stale-state rule doing its job when a loaded machine delays the driver (never any other reason)."""
    messages = [s.message for s in action_statuses[1:]]
    assert messages and messages.count("acting") >= len(messages) / 2, sorted(set(messages))
    others = sorted({m for m in messages if m != "acting"})  # the reasons, not a list cut off after six
    assert all(m.startswith("holding: joint state is") for m in others), others


SEPARATE_ONLY = pytest.mark.parametrize("running", [False], indirect=True, ids=["separate"])


@SEPARATE_ONLY
def test_bad_messages_are_rejected_with_a_reason_and_the_nodes_keep_running(running):
    from sensor_msgs.msg import JointState

    from asyncvla_ros.msg import SemanticFeatures, TensorBlob
    from asyncvla_ros.nodes.conversions import to_time

    probe = running.probe
    states = probe.node.create_publisher(JointState, "joint_states", 10)
    from asyncvla_ros.nodes.qos import FEATURES

    features = probe.node.create_publisher(SemanticFeatures, "semantic_features", FEATURES)
    probe.wait_for(lambda: features.get_subscription_count() > 0 and states.get_subscription_count() > 1, 10, "subscribers")
    names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    nan_state = JointState(name=names, position=[0.0, float("nan"), 0.0, 0.0, 0.0, 0.0])
    unknown = JointState(name=names[:5] + ["elbow"], position=[0.0] * 6)
    short = JointState(name=names, position=[0.0] * 5)
    for msg in (nan_state, unknown, short):
        msg.header.stamp = to_time(time.time_ns())
        states.publish(msg)
        time.sleep(0.2)
    blob = TensorBlob(name="keys.0", dtype="float32", shape=[1, 2, 128, 16], data=b"\x00" * 12)
    from asyncvla_ros.policy.default import default_model_id

    wrong_dims = SemanticFeatures(seq=999, model_id=default_model_id(), feature_kind="prefix_kv_cache",
                                  transport="inline", tensors=[blob])
    wrong_model = SemanticFeatures(seq=998, model_id="someone-elses-model", transport="inline")
    for msg in (wrong_dims, wrong_model):
        msg.header.stamp = to_time(time.time_ns())
        features.publish(msg)
        time.sleep(0.2)
    time.sleep(0.5)
    action_log = running.procs["action"].output()
    assert "joint state rejected: JointState has non-finite positions" in action_log
    assert "joint state rejected: JointState lacks joints ['gripper']" in action_log
    assert "joint state rejected: JointState has 6 names but 5 positions" in action_log
    assert "semantic features seq 999 rejected: tensor 'keys.0': 12 bytes for shape (1, 2, 128, 16)" in action_log
    assert "from model 'someone-elses-model'" in action_log
    safety_log = running.procs["safety_filter"].output()
    assert "refused (nan): joint state" in safety_log
    assert all(p.alive() for p in running.procs.values())
    t = time.monotonic()
    probe.wait_for(lambda: len(probe.messages("action_chunk", t)) > 10, 10, "chunks after the bad messages")


@SEPARATE_ONLY
def test_a_dead_camera_stops_encoding_with_the_reason_logged_and_a_restart_resumes(running):
    probe = running.probe
    running.procs["wrist_camera"].stop(signal.SIGKILL)
    t_kill = time.monotonic()
    time.sleep(7.0)  # diagnostics count encodes over 5 s; the node logs the reason after 5 s without one
    semantic = [s.message for s in running.diagnostics("semantic", t_kill + 6.0)]
    assert semantic and all(m == "not encoding: no fresh frame from ['wrist']" for m in semantic), semantic
    assert "not encoding: no fresh frame from ['wrist']" in running.procs["semantic"].output()
    reasons = [s.message for s in running.diagnostics("action", t_kill + 2.0)]
    assert reasons and all(r.startswith("holding: semantic features") for r in reasons), reasons

    running.restart("wrist_camera")
    t_restart = time.monotonic()
    probe.wait_for(lambda: len(probe.messages("action_chunk", t_restart)) > 10, 60, "chunks after restarting the camera")


@SEPARATE_ONLY
def test_killing_the_semantic_node_holds_and_a_restart_resumes(running):
    probe = running.probe
    running.procs["semantic"].stop(signal.SIGKILL)
    t_kill = time.monotonic()
    time.sleep(3.0)
    after = [m for t, m in probe.stamped("joint_command") if t > t_kill + 2 * PERIOD_S + 0.2]
    assert len(after) > 20, "the action node stopped publishing instead of holding"
    held = positions(after[0])
    assert all(np.array_equal(positions(m), held) for m in after), "new motion after the hold"
    reasons = [s.message for s in running.diagnostics("action", t_kill + 1.0)]
    assert reasons and all(r.startswith("holding: semantic features") for r in reasons), reasons
    first_hold = next(t for t, m in probe.stamped("joint_command") if t > t_kill and np.array_equal(positions(m), held))
    print(f"hold began {first_hold - t_kill:.3f} s after the kill")

    running.restart("semantic")
    t_restart = time.monotonic()
    probe.wait_for(lambda: len({tuple(positions(m)) for m in probe.messages("joint_command", t_restart)}) > 5,
                   120, "motion after restarting the semantic node")


@SEPARATE_ONLY
def test_killing_the_driver_reports_stale_state_and_stops_commanding(running):
    probe = running.probe
    running.procs["driver"].stop(signal.SIGKILL)
    t_kill = time.monotonic()
    t_kill_ns = time.time_ns()
    time.sleep(2.0)
    # When a command was sent is its header stamp (the filter stamps it as it publishes); the probe's
    # receipt time would also count this test process's own delivery delays under load.
    deadline_ns = t_kill_ns + int((MAX_STATE_AGE_S + 3 * PERIOD_S) * 1e9)
    late = [m for m in probe.messages("joint_command")
            if m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec > deadline_ns]
    assert late == [], f"{len(late)} commands sent on a stale joint state"
    stale = [e for e in probe.messages("safety_events", t_kill) if e.kind == "stale_state"]
    assert any("joint state stale" in e.detail for e in stale), [e.detail for e in stale]
    reasons = [s.message for s in running.diagnostics("action", t_kill + 1.0)]
    assert reasons and all("joint state is" in r for r in reasons), reasons
    safety = running.diagnostics("safety_filter", t_kill + 1.0)
    assert safety and all(s.message == "joint state stale" for s in safety)
