import threading

import numpy as np
import pytest

from asyncvla_ros.control.safety import SafetyConfig, SafetyFilter

S = 1_000_000_000
NAMES = ("a", "b", "c")


def make(**kw) -> SafetyFilter:
    cfg = SafetyConfig(NAMES, (-1.0, -1.0, 0.0), (1.0, 1.0, 0.5), (0.1, 0.2, 0.05), **kw)
    f = SafetyFilter(cfg)
    f.update_state(NAMES, [0.0, 0.95, 0.25], 10 * S)
    return f


def test_in_range_command_passes_unchanged_and_is_reordered():
    f = make()
    v = f.check(("c", "a", "b"), [0.26, 0.05, 0.9], 10 * S, 10 * S)
    assert v.accepted and not v.events
    np.testing.assert_array_equal(v.positions, [0.05, 0.9, 0.26])


def test_limits_then_step_are_clamped_and_reported():
    f = make()
    v = f.check(NAMES, [0.5, 3.0, 0.25], 10 * S, 10 * S)
    # a: step +0.5 -> +0.1; b: 3.0 -> limit 1.0 (step 0.05 is fine); c unchanged.
    np.testing.assert_allclose(v.positions, [0.1, 1.0, 0.25])
    assert sorted(e.kind for e in v.events) == ["joint_limit", "max_step"]
    assert not any(e.refused for e in v.events)
    assert f.counts["joint_limit"] == 1 and f.counts["max_step"] == 1
    assert f.refused == 0  # altered, not refused: SafetyEvent.refusal_count counts only refusals


def test_arm_outside_its_limits_is_walked_back_no_faster_than_max_step():
    f = make()
    f.update_state(NAMES, [0.0, 0.0, 0.8], 10 * S)  # c is 0.3 past its upper limit
    v = f.check(NAMES, [0.0, 0.0, 0.8], 10 * S, 10 * S)
    assert v.positions[2] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "names, values, kind",
    [
        (NAMES, [0.0, np.nan, 0.2], "nan"),
        (NAMES, [0.0, np.inf, 0.2], "nan"),
        (("a", "b", "x"), [0.0, 0.0, 0.2], "unknown_joint"),
        (("a", "b"), [0.0, 0.0], "dimension"),
        (NAMES, [0.0, 0.0], "dimension"),
        (("a", "a", "b"), [0.0, 0.0, 0.0], "dimension"),
    ],
)
def test_malformed_commands_are_refused(names, values, kind):
    f = make()
    v = f.check(names, values, 10 * S, 10 * S)
    assert not v.accepted and v.events[0].kind == kind and v.events[0].refused
    assert f.counts[kind] == 1 and f.refused == 1


def test_stale_command_and_stale_state_are_refused():
    f = make(command_timeout_s=0.1, state_timeout_s=0.2)
    assert f.check(NAMES, [0, 0.95, 0.25], 10 * S, int(10.15 * S)).events[0].kind == "stale_command"
    assert f.check(NAMES, [0, 0.95, 0.25], int(10.25 * S), int(10.25 * S)).events[0].kind == "stale_state"
    fresh = SafetyFilter(f.config)
    assert "no joint state yet" in fresh.check(NAMES, [0, 0, 0.25], 0, 0).events[0].detail


def test_stamps_from_the_future_are_as_stale_as_old_ones():
    # A joint state stamped ahead of the filter's clock must not stay "fresh" after its driver died.
    f = make(command_timeout_s=0.1, state_timeout_s=0.2)
    assert f.check(NAMES, [0, 0.95, 0.25], int(10.05 * S), int(9.98 * S)).accepted  # a little ahead: fine
    ahead = f.check(NAMES, [0, 0.95, 0.25], int(10.5 * S), int(10.3 * S))
    assert not ahead.accepted and ahead.events[0].kind == "stale_command"
    assert "stamped 0.200 s in the future" in ahead.events[0].detail
    f.update_state(NAMES, [0.0, 0.95, 0.25], 20 * S)  # a driver whose clock is 10 s ahead
    v = f.check(NAMES, [0, 0.95, 0.25], 10 * S, 10 * S)
    assert not v.accepted and v.events[0].kind == "stale_state" and "10.000 s in the future" in v.events[0].detail


def test_estop_latches_until_released():
    f = make()
    stop = f.engage_estop("operator")
    np.testing.assert_array_equal(stop, [0.0, 0.95, 0.25])
    for _ in range(3):
        v = f.check(NAMES, [0.0, 0.95, 0.25], 10 * S, 10 * S)
        assert not v.accepted and v.events[0].kind == "estop"
    assert f.release_estop() and not f.estop_latched
    assert f.check(NAMES, [0.0, 0.95, 0.25], 10 * S, 10 * S).accepted
    assert not f.release_estop()


def test_bad_joint_state_is_reported_and_does_not_replace_the_good_one():
    f = make()
    assert f.update_state(NAMES, [0.0, np.nan, 0.0], 11 * S).kind == "nan"
    v = f.check(NAMES, [0.0, 0.95, 0.25], 10 * S, 10 * S)
    assert v.accepted


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="max_step_rad needs 3"):
        SafetyConfig(NAMES, (0, 0, 0), (1, 1, 1), (0.1,))
    with pytest.raises(ValueError, match="'b' has lower limit"):
        SafetyConfig(NAMES, (0, 2, 0), (1, 1, 1), (0.1, 0.1, 0.1))


def test_concurrent_updates_and_checks_stay_consistent():
    f = make()
    stop = threading.Event()

    def states():
        i = 0
        while not stop.is_set():
            f.update_state(NAMES, [0.0, 0.95, 0.25], 10 * S + i)
            i += 1

    t = threading.Thread(target=states)
    t.start()
    try:
        for _ in range(2000):
            v = f.check(NAMES, [0.5, 0.95, 0.25], 10 * S, 10 * S)
            assert v.positions[0] == pytest.approx(0.1)
    finally:
        stop.set()
        t.join()


def test_a_joint_state_far_outside_the_limits_is_refused_and_commands_go_on_checked_against_the_last_plausible_one():
    f = make()
    event = f.update_state(NAMES, [0.0, 1e30, 0.25], int(10.1 * S))  # an encoder fault, not an arm
    assert event.kind == "implausible_state" and event.refused and "b" in event.detail
    v = f.check(NAMES, [0.0, 0.9, 0.25], int(10.1 * S), int(10.1 * S))
    assert v.accepted and np.all(v.positions <= np.array(f.config.position_upper_rad))  # against 0.95, not 1e30
    margin = f.config.implausible_state_margin_rad
    assert f.update_state(NAMES, [0.0, 1.0 + margin * 0.9, 0.25], int(10.2 * S)) is None  # past the limit, but an arm can be
    # After the last plausible state goes stale, everything is refused.
    assert f.update_state(NAMES, [0.0, -5.0, 0.25], int(10.2 * S)).kind == "implausible_state"
    assert f.check(NAMES, [0.0, 0.9, 0.25], int(10.6 * S), int(10.6 * S)).events[0].kind == "stale_state"


def test_every_kind_of_event_is_a_constant_of_the_message():
    pytest.importorskip("rclpy")
    try:
        from asyncvla_ros.msg import SafetyEvent
    except ImportError:
        pytest.skip("needs the colcon install space")
    from asyncvla_ros.control.safety import KINDS

    assert sorted(KINDS) == sorted(getattr(SafetyEvent, name) for name in dir(SafetyEvent) if name.startswith("KIND_"))
