import numpy as np
import pytest

torch = pytest.importorskip("torch")

from asyncvla_ros.control.action_loop import ActionLoop, ActionLoopConfig  # noqa: E402
from asyncvla_ros.control.semantic_store import SemanticItem  # noqa: E402

from ..policy.conftest import INSTRUCTIONS, random_images, tiny_config  # noqa: E402

S = 1_000_000_000


@pytest.fixture(scope="module")
def loop_parts():
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS).eval()
    cond = policy.encode(random_images(), INSTRUCTIONS[0], stamp_ns=10 * S)
    return policy, SemanticItem(cond, seq=1, stamp_ns=10 * S, instruction=INSTRUCTIONS[0])


def test_acting_blends_chunks_and_records_history(loop_parts):
    policy, sem = loop_parts
    loop = ActionLoop(policy, ActionLoopConfig())
    state = np.zeros(6)
    r1 = loop.tick(int(10.1 * S), sem, state, int(10.09 * S))
    assert not r1.holding and r1.chunk_id == 1
    np.testing.assert_allclose(r1.command, r1.chunk.actions[0], rtol=0, atol=1e-6)  # one chunk: its first step
    r2 = loop.tick(int(10.15 * S), sem, state, int(10.14 * S))
    w = np.exp(-0.1 * np.arange(2))
    expected = (w[0] * r1.chunk.actions[1] + w[1] * r2.chunk.actions[0]) / w.sum()
    np.testing.assert_allclose(r2.command, expected, rtol=1e-6, atol=1e-6)
    assert len(loop.history) == 2
    assert r2.semantic_age_s == pytest.approx(0.15)


def test_holds_with_a_reason_on_stale_inputs(loop_parts):
    policy, sem = loop_parts
    loop = ActionLoop(policy, ActionLoopConfig(max_semantic_age_s=0.5, max_state_age_s=0.1))
    state = np.zeros(6)
    first = loop.tick(int(10.1 * S), sem, state, int(10.1 * S))
    old_sem = loop.tick(int(10.7 * S), sem, state, int(10.7 * S))
    assert old_sem.holding and "semantic features are 0.70 s old" in old_sem.reason
    np.testing.assert_array_equal(old_sem.command, first.command)  # holds the last target: no new motion
    assert len(loop.history) == 0 and len(loop.ensembler) == 0
    gone = loop.tick(int(10.2 * S), sem, state, int(10.2 * S), semantics_alive=False)
    assert gone.holding and "publisher is gone" in gone.reason
    old_state = loop.tick(int(10.3 * S), sem, state, int(10.1 * S))
    assert old_state.holding and old_state.command is None and "joint state is 0.20 s old" in old_state.reason
    none = ActionLoop(policy, ActionLoopConfig()).tick(0, None, None, 0)
    assert none.command is None and "no joint state" in none.reason
    fresh = ActionLoop(policy, ActionLoopConfig()).tick(int(10.1 * S), None, state, int(10.1 * S))
    np.testing.assert_array_equal(fresh.command, state)  # nothing commanded yet: hold where the arm is
    ahead = ActionLoop(policy, ActionLoopConfig(max_state_age_s=0.1)).tick(int(10.1 * S), sem, state, int(10.5 * S))
    assert ahead.holding and ahead.command is None and "joint state is stamped 0.40 s in the future" in ahead.reason
    early = ActionLoop(policy, ActionLoopConfig(max_semantic_age_s=0.5)).tick(int(9.0 * S), sem, state, int(9.0 * S))
    assert early.holding and "semantic features are stamped 1.00 s in the future" in early.reason


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="control_rate_hz"):
        ActionLoopConfig(control_rate_hz=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        ActionLoopConfig(mode="turbo")


def test_following_another_runs_chunks_keeps_ensembling_and_history_equal_to_it(loop_parts):
    """What a re-run does through ticks it cannot plan itself: the followed loop ends in the same state
    as the loop that planned, so the next plan is bit for bit the same."""
    policy, sem = loop_parts
    state = np.zeros(6)
    planner, follower = ActionLoop(policy, ActionLoopConfig()), ActionLoop(policy, ActionLoopConfig())
    planned = [planner.tick(int((10.1 + 0.05 * i) * S), sem, state, int((10.1 + 0.05 * i) * S)) for i in range(6)]
    for i, r in enumerate(planned):
        if i % 2:
            command = follower.follow(r.chunk.actions)  # no plan at all
        else:  # a plan of its own (for the report), while the other run's chunk is what it executes
            own = follower.tick(int((10.1 + 0.05 * i) * S), sem, state + 0.01, int((10.1 + 0.05 * i) * S), executed=r.chunk.actions)
            command = own.command
            assert not np.array_equal(own.chunk.actions, r.chunk.actions)  # planned from another state
        assert np.array_equal(command, r.command)
    assert (follower.tick_count, follower.chunk_id) == (planner.tick_count, planner.chunk_id)
    a = planner.tick(int(10.5 * S), sem, state, int(10.5 * S))
    b = follower.tick(int(10.5 * S), sem, state, int(10.5 * S))
    assert np.array_equal(a.chunk.actions, b.chunk.actions) and np.array_equal(a.command, b.command)
    assert follower.follow(None) is None and follower.chunk_id == planner.chunk_id + 1  # a chunk nobody knows


def test_skip_to_counts_on_from_another_runs_tick_so_seeds_match(loop_parts):
    policy, sem = loop_parts
    loop = ActionLoop(policy, ActionLoopConfig(seed=7))
    loop.skip_to(100, 40)
    r = loop.tick(int(10.1 * S), sem, np.zeros(6), int(10.1 * S))
    assert (r.tick, r.chunk_id, r.chunk.seed) == (101, 41, 108) and len(loop.history) == 1


def test_what_the_safety_filter_let_through_replaces_the_command_in_the_history(loop_parts):
    policy, sem = loop_parts
    loop = ActionLoop(policy, ActionLoopConfig())
    state = np.zeros(6)
    t1, t2 = int(10.1 * S), int(10.15 * S)
    r1 = loop.tick(t1, sem, state, t1)
    r2 = loop.tick(t2, sem, state, t2)
    clamped = r1.command + 0.01
    assert loop.executed(t1, clamped)
    np.testing.assert_array_equal(loop.history.array(), np.stack([clamped, r2.command]).astype(np.float32))
    r3 = loop.tick(int(10.2 * S), sem, state, int(10.2 * S))
    assert r3.history_answered == (True, False)  # what the plan saw: the first entry is the filter's answer
    # A verdict on a command no longer in the history (before a hold, or unknown) changes nothing.
    assert not loop.executed(int(9 * S), clamped)
    loop.tick(0, None, None, 0)  # a hold clears the history
    assert not loop.executed(t2, clamped) and len(loop.history) == 0
    with pytest.raises(ValueError, match="finite"):
        loop.executed(t2, np.full(6, np.nan))


def _ticks(loop, sem, n, state=None):
    state = np.zeros(6) if state is None else state
    return [loop.tick(int((10.1 + 0.05 * i) * S), sem, state, int((10.1 + 0.05 * i) * S)) for i in range(n)]


@pytest.mark.parametrize("chunk_mode", ["ensemble", "latest", "continue"])
def test_a_plan_takes_effect_plan_delay_ticks_later_and_the_next_starts_then(loop_parts, chunk_mode):
    policy, sem = loop_parts
    d = 3
    results = _ticks(ActionLoop(policy, ActionLoopConfig(chunk_mode=chunk_mode, plan_delay_ticks=d)), sem, 10)
    planned = [r.tick for r in results if r.chunk is not None]
    assert planned == [1, 4, 7, 10]  # one plan in flight at a time
    first = results[0]
    for r in results[:d]:  # the first plan is in flight: hold where the arm is, and say so
        assert r.holding and "first plan in flight (plan delay 3 ticks)" in r.reason
        np.testing.assert_array_equal(r.command, np.zeros(6))
    if chunk_mode != "ensemble":  # the newest chunk's step for the tick
        for r in results[d:2 * d]:
            assert not r.holding
            np.testing.assert_array_equal(r.command, first.chunk.actions[r.tick - 1].astype(np.float64))


def test_continue_plans_each_chunk_around_the_steps_that_run_while_it_is_computed(loop_parts):
    policy, sem = loop_parts
    d = 2
    results = _ticks(ActionLoop(policy, ActionLoopConfig(chunk_mode="continue", plan_delay_ticks=d)), sem, 13)
    commands = {r.tick: r.command for r in results}
    chunks = [r for r in results if r.chunk is not None]
    assert [r.tick for r in chunks] == [1, 3, 5, 7, 9, 11, 13]
    for r in chunks[:-1]:
        assert r.chunk.context.sum() == d
        # Its first d steps are the commands of ticks t .. t + d - 1, bit for bit (the hold, for the first).
        np.testing.assert_array_equal(r.chunk.actions[:d].astype(np.float64), np.stack([commands[r.tick + k] for k in range(d)]))


def test_continue_with_no_delay_plans_the_plain_chunk_and_latest_executes_its_first_step(loop_parts):
    policy, sem = loop_parts
    plain = _ticks(ActionLoop(policy, ActionLoopConfig(chunk_mode="latest")), sem, 4)
    cont = _ticks(ActionLoop(policy, ActionLoopConfig(chunk_mode="continue")), sem, 4)
    for a, b in zip(plain, cont):
        np.testing.assert_array_equal(a.chunk.actions, b.chunk.actions)
        assert not b.chunk.context.any()
        np.testing.assert_array_equal(b.command, b.chunk.actions[0].astype(np.float64))


def test_a_hold_drops_the_plan_in_flight(loop_parts):
    policy, sem = loop_parts
    loop = ActionLoop(policy, ActionLoopConfig(chunk_mode="latest", plan_delay_ticks=2))
    _ticks(loop, sem, 3)  # plans at 1 (landed at 3) and 3 (in flight)
    assert loop.tick(int(10.3 * S), sem, np.zeros(6), int(10.3 * S), semantics_alive=False).holding
    after = loop.tick(int(10.35 * S), sem, np.zeros(6), int(10.35 * S))
    assert after.chunk is not None and after.holding and "first plan in flight" in after.reason


def test_plan_delay_is_at_most_half_the_chunk(loop_parts):
    policy, _ = loop_parts
    L = policy.config.expert.chunk_len
    ActionLoop(policy, ActionLoopConfig(plan_delay_ticks=L // 2))
    with pytest.raises(ValueError, match="plan_delay_ticks 5: at most half the policy's chunk"):
        ActionLoop(policy, ActionLoopConfig(plan_delay_ticks=L // 2 + 1))
    with pytest.raises(ValueError, match="chunk_mode must be one of"):
        ActionLoopConfig(chunk_mode="smooth")


def test_a_policy_in_degrees_and_another_joint_order_is_planned_in_its_units_and_commands_in_radians(loop_parts):
    from asyncvla_ros.control.joint_space import JointSpace
    from asyncvla_ros.policy.config import JointSpaceConfig

    policy, sem = loop_parts
    robot = ("a", "b", "c", "d", "e", "f")
    js = JointSpace(JointSpaceConfig(tuple(f"{n}.pos" for n in reversed(robot)), ("deg",) * 6), robot)
    seen = []

    class Recording:
        config = policy.config

        def act(self, cond, state, history, **kw):
            seen.append((np.asarray(state), np.asarray(history)))
            return policy.act(cond, state, history, **kw)

    state = np.linspace(-0.5, 0.5, 6)
    plain = ActionLoop(policy, ActionLoopConfig()).tick(int(10.1 * S), sem, js.to_policy(state), int(10.09 * S))
    loop = ActionLoop(Recording(), ActionLoopConfig(), js)
    r = loop.tick(int(10.1 * S), sem, state, int(10.09 * S))
    np.testing.assert_allclose(seen[0][0], np.degrees(state[::-1]))  # the policy saw its own units and order
    np.testing.assert_allclose(r.chunk.actions, js.to_robot(plain.chunk.actions), atol=1e-9)  # the chunk came back in rad
    np.testing.assert_allclose(r.command, r.chunk.actions[0], atol=1e-9)
    loop.tick(int(10.15 * S), sem, state, int(10.14 * S))
    np.testing.assert_allclose(seen[1][1], js.to_policy(loop.history.array()[:1]), atol=1e-9)  # history in its units too


def test_the_policy_reads_the_semantics_age_from_their_observation_to_the_state_it_plans_from():
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    policy = AsyncVLAPolicy.build(tiny_config(semantic_age_max_s=0.5), INSTRUCTIONS).eval()
    with torch.no_grad():
        policy.expert.age_in.weight.normal_(generator=torch.Generator().manual_seed(0))
    cond = policy.encode(random_images(), INSTRUCTIONS[0], stamp_ns=10 * S)
    sem = SemanticItem(cond, seq=1, stamp_ns=10 * S, instruction=INSTRUCTIONS[0])
    state = np.zeros(6)
    # The state stamped 0.2 s after the frames, read 0.03 s later: the age is 0.2 s, not 0.23 s.
    r = ActionLoop(policy, ActionLoopConfig(seed=5)).tick(int(10.23 * S), sem, state, int(10.2 * S))
    direct = policy.act(cond, state, np.zeros((0, 6)), seed=6, semantic_age_s=0.2)
    np.testing.assert_array_equal(r.chunk.actions, direct.actions)
    assert not np.array_equal(direct.actions, policy.act(cond, state, np.zeros((0, 6)), seed=6, semantic_age_s=0.23).actions)
