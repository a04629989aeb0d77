"""The velocity tracker of the Kinova backends, alone: analytic bounds, no I/O."""

import numpy as np

from asyncvla_ros.drivers.kinova.tracking import VelocityTracker

VMAX = np.array([0.628, 0.628, 0.628, 0.838, 0.838, 0.838])
LOWER, UPPER = -np.ones(6) * 3.0, np.ones(6) * 3.0


def tracker(accel=2.0):
    return VelocityTracker(VMAX, accel, 4.0, 0.002, LOWER, UPPER, 0.01)


def simulate(t, q, targets):
    v = np.zeros(6)
    out = []
    for target in targets:
        v = t.step(q, target, v)
        q = q + v * t.dt
        out.append((q.copy(), v.copy()))
    return out


def test_random_targets_never_exceed_speed_or_acceleration_limits():
    rng = np.random.default_rng(0)
    t = tracker()
    targets = np.repeat(rng.uniform(-2.9, 2.9, size=(60, 6)), 20, axis=0)  # a new target every 0.2 s
    trace = simulate(t, np.zeros(6), targets)
    v = np.array([v for _, v in trace])
    assert np.all(np.abs(v) <= VMAX)
    assert np.abs(np.diff(v, axis=0)).max() <= 2.0 * 0.01 + 1e-12
    assert np.abs(v).max(axis=0).min() > 0.9 * VMAX.min()  # it did use the speed it has


def test_a_step_is_reached_without_overshoot_and_held():
    t = tracker()
    target = np.array([0.5, -0.5, 0.2, 1.0, -1.0, 0.01])
    trace = simulate(t, np.zeros(6), [target] * 400)
    q = np.array([q for q, _ in trace])
    np.testing.assert_allclose(q[-1], target, atol=0.003)
    overshoot = np.maximum((q - target) * np.sign(target), 0).max()
    assert overshoot < 0.003
    assert np.all(trace[-1][1] == 0.0)  # inside the tolerance: zero velocity


def test_never_heads_into_a_position_limit_faster_than_it_can_stop():
    t = tracker(accel=2.0)
    q = np.full(6, 2.9)  # 0.1 rad below the upper limit, target far beyond it
    trace = simulate(t, q, [np.full(6, 10.0)] * 300)
    qs = np.array([q for q, _ in trace])
    assert qs.max() <= 3.0 + 1e-9


def test_feedforward_removes_the_lag_on_a_ramp():
    t = tracker()
    speed = np.array([0.3, 0.3, 0.3, 0.5, 0.5, 0.5])
    lag = {}
    for name, ff in (("p_only", None), ("feedforward", speed)):
        q, v = np.zeros(6), np.zeros(6)
        for k in range(300):  # 3 s of a target moving at `speed`
            target = speed * k * t.dt
            v = t.step(q, target, v, ff)
            q = q + v * t.dt
        lag[name] = target - q
    np.testing.assert_allclose(lag["p_only"], speed / 4.0, rtol=0.05)  # the proportional lag s / gain
    assert np.abs(lag["feedforward"]).max() < 0.01
