"""Continuous Kinova joints (J1, J4-J6) through a driver that wraps their angle, as Gen2/Kortex ROS
drivers do ([0, 2pi) or [-pi, pi)): the backend keeps each angle continuous, so the tracking loop never
sees a joint that crosses the wrap point as a full turn away from its target."""

import math
import time

import numpy as np
import pytest

from asyncvla_ros.drivers import DriverError, make_backend
from asyncvla_ros.drivers.kinova.config import KinovaRosConfig

TWO_PI = 2.0 * math.pi
START = np.array([math.pi - 0.05, 2.0, 2.0, 0.5, -math.pi + 0.05, -0.5])


def wrapped(q: np.ndarray) -> np.ndarray:
    """What a driver reporting the continuous joints in [-pi, pi) publishes."""
    out = q.copy()
    for i in (0, 3, 4, 5):
        out[i] = (q[i] + math.pi) % TWO_PI - math.pi
    return out


def wait_for(predicate, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_wrapping_reading_stays_continuous_and_the_tracker_drives_the_short_way():
    sent = []
    backend = make_backend("kinova_gen2_ros", {})
    backend.attach(lambda v: sent.append(np.array(v)))
    backend.connect()
    names = list(backend.joint_names)
    stamp = [time.monotonic_ns()]

    def taken() -> bool:
        try:
            return backend.read().stamp_ns == stamp[0]
        except DriverError:  # no reading yet
            return False

    def publish(q) -> None:  # one JointState, and wait until the 100 Hz loop has taken it
        stamp[0] += 10_000_000
        backend.on_joint_state(names, list(wrapped(q)), [], stamp[0])
        wait_for(taken)

    try:
        publish(START)
        np.testing.assert_allclose(backend.read().positions_rad, wrapped(START))
        # J1 moves 0.1 rad up across the wrap point (reported pi -> -pi + 0.05), J5 0.1 rad down across it.
        q = START + np.array([0.1, 0.0, 0.0, 0.0, -0.1, 0.0])
        for step in np.linspace(0.0, 1.0, 11)[1:]:
            publish(START + step * (q - START))
        reading = backend.read().positions_rad
        np.testing.assert_allclose(reading, q, atol=1e-9)  # continuous: J1 past pi, J5 below -pi
        assert reading[0] > math.pi and reading[4] < -math.pi
        # Holding there, then a target just past it: every commanded speed stays small, none a full-turn rush.
        backend.enable()
        backend.command(reading + 0.01)
        before = len(sent)
        wait_for(lambda: len(sent) > before + 20)
        assert np.abs(np.array(sent[before:])).max() < 0.2
        assert np.all(np.array(sent[-1]) >= 0.0)  # towards +0.01 on every joint
    finally:
        backend.disconnect()


def test_continuous_joints_must_name_arm_joints():
    with pytest.raises(ValueError, match="continuous_joints must be distinct names from joint_names"):
        KinovaRosConfig(continuous_joints=("j2n6s200_joint_1",))
    assert KinovaRosConfig(continuous_joints=()).continuous_joints == ()
