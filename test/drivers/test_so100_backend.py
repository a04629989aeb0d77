"""The so100 backend running LeRobot's unmodified SO100 follower driver against an emulated STS3215 bus.

Asserted at the hardware boundary: register values (Torque_Enable, Goal_Position, calibration) and
every packet that reached the bus; joint readings against LeRobot's normalisation written out by hand.
"""

import math
import time

import numpy as np
import pytest

from asyncvla_ros.drivers import DriverError
from asyncvla_ros.drivers.so100.config import SO100Config

from .feetech_bus import GOAL_POSITION, HOMING_OFFSET, LOCK, MAX_POS, MIN_POS, PRESENT_POSITION, TORQUE_ENABLE
from .so100_support import (CALIBRATION, ROBOT_ID, emulated_arm, gripper_ticks_to_unit, gripper_unit_to_ticks, rad_to_ticks,
                            require_lerobot, ticks_to_rad, write_calibration)

IDS = range(1, 7)


@pytest.fixture(scope="module", autouse=True)
def lerobot():
    require_lerobot()


def make_backend(bus, cal_dir, **overrides):
    from asyncvla_ros.drivers.so100.backend import SO100Backend

    return SO100Backend(SO100Config(port=bus.port, robot_id=ROBOT_ID, calibration_dir=str(cal_dir), state_rate_hz=100.0, **overrides))


@pytest.fixture
def arm(tmp_path):
    bus = emulated_arm()
    write_calibration(tmp_path / "cal")
    backend = make_backend(bus, tmp_path / "cal")
    yield bus, backend
    backend.disconnect()
    bus.close()


def wait_until(predicate, timeout_s=2.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def presents(bus):
    return {i: bus.reg(i, PRESENT_POSITION) for i in IDS}


def test_connect_leaves_torque_off_and_reads_radians_matching_the_registers(arm):
    bus, backend = arm
    backend.connect()
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [0] * 6
    # LeRobot's configure() switched torque on for a moment: the goal was the present position first.
    assert {i: bus.reg(i, GOAL_POSITION) for i in IDS} == presents(bus)

    ticks = {1: 1000, 2: 2600, 3: 1500, 4: 2100, 5: 3900, 6: 2700}
    for i, t in ticks.items():
        bus.set_reg(i, PRESENT_POSITION, t, 2)
    t_set = time.time_ns()
    # A reading is stamped at the middle of its bus transaction, so the first one stamped after t_set
    # may have sampled the registers before they changed; the next transaction starts after it ended.
    wait_until(lambda: backend.read().stamp_ns > t_set, what="a reading stamped after the registers changed")
    first = backend.read().stamp_ns
    wait_until(lambda: backend.read().stamp_ns > first, what="a reading from a transaction begun after the change")
    reading = backend.read()
    lo, hi = backend.config.gripper_range_rad
    expected = [ticks_to_rad(i, ticks[i]) for i in range(1, 6)] + [gripper_ticks_to_unit(ticks[6], lo, hi)]
    np.testing.assert_allclose(reading.positions_rad, expected, rtol=0, atol=1e-9)
    assert abs(reading.stamp_ns - time.time_ns()) < 0.5e9


def test_activate_enables_torque_and_commands_become_exact_goal_registers_with_the_clamp(arm):
    bus, backend = arm
    backend.connect()
    backend.enable()
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [1] * 6
    assert [bus.reg(i, LOCK, 1) for i in IDS] == [1] * 6
    q = backend.read().positions_rad
    lo, hi = backend.config.gripper_range_rad

    # Inside max_relative_target (0.15 rad body, 0.3 rad gripper): written as asked.
    target = q + np.array([0.05, -0.05, 0.1, 0.0, 0.12, 0.2])
    t0 = time.monotonic()
    backend.command(target)
    wait_until(lambda: len(bus.goal_writes(t0)) >= 6, what="goal writes")
    goals = {i: bus.reg(i, GOAL_POSITION) for i in IDS}
    assert goals == {**{i: rad_to_ticks(i, target[i - 1]) for i in range(1, 6)}, 6: gripper_unit_to_ticks(target[5], lo, hi)}
    assert all(w.instruction == 0x83 for w in bus.goal_writes(t0))  # one SYNC_WRITE, as LeRobot sends it

    # Beyond it: LeRobot's clamp to present +- max_relative_target, computed here in its units (deg).
    present = presents(bus)
    far = q + np.array([0.4, -0.4, 0.0, 0.0, 0.0, 0.0])
    t1 = time.monotonic()
    backend.command(far)
    wait_until(lambda: len(bus.goal_writes(t1)) >= 6, what="clamped goal writes")
    max_deg = math.degrees(0.15)
    for i, sign in ((1, 1), (2, -1)):
        _, rmin, rmax = CALIBRATION[i]
        mid = (rmin + rmax) / 2
        present_deg = (present[i] - mid) * 360 / 4095
        assert bus.reg(i, GOAL_POSITION) == int((present_deg + sign * max_deg) * 4095 / 360 + mid)
    np.testing.assert_allclose(backend.last_sent[:2], q[:2] + [0.15, -0.15], atol=2e-3)
    assert backend.figures()["clamped_writes"] >= 1


def test_a_command_beyond_a_joint_limit_never_reaches_the_bus(arm):
    bus, backend = arm
    backend.connect()
    backend.enable()
    q = backend.read().positions_rad
    t0 = time.monotonic()
    beyond = q.copy()
    beyond[0] = backend.config.position_upper[0] + 0.01
    with pytest.raises(DriverError, match="outside their limits"):
        backend.command(beyond)
    nan = q.copy()
    nan[3] = float("nan")
    with pytest.raises(DriverError, match="finite"):
        backend.command(nan)
    with pytest.raises(DriverError, match="6 finite positions"):
        backend.command(q[:5])
    time.sleep(0.2)
    assert bus.goal_writes(t0) == []
    backend.command(q)  # the same path does write a valid command
    wait_until(lambda: len(bus.goal_writes(t0)) == 6, what="the valid command's writes")


def test_deactivate_disables_torque_and_refuses_commands(arm):
    bus, backend = arm
    backend.connect()
    backend.enable()
    backend.disable()
    assert [bus.reg(i, TORQUE_ENABLE, 1) for i in IDS] == [0] * 6
    t0 = time.monotonic()
    with pytest.raises(DriverError, match="not active"):
        backend.command(backend.read().positions_rad)
    time.sleep(0.1)
    assert bus.goal_writes(t0) == []


def test_estop_holds_with_torque_on(arm):
    bus, backend = arm
    backend.connect()
    backend.enable()
    bus.set_reg(1, PRESENT_POSITION, 2500, 2)  # the arm was pushed: hold where it is now
    backend.stop()
    # SYNC_WRITE has no reply: the emulator applies it a moment after stop() returns.
    wait_until(lambda: bus.reg(1, GOAL_POSITION) == 2500, what="the hold goal")
    assert bus.reg(1, TORQUE_ENABLE, 1) == 1
    with pytest.raises(DriverError, match="not active"):
        backend.command(backend.read().positions_rad)


def test_missing_calibration_fails_at_connect_naming_lerobots_calibrate_command(tmp_path):
    bus = emulated_arm()
    try:
        backend = make_backend(bus, tmp_path / "empty")
        with pytest.raises(DriverError) as err:
            backend.connect()
        assert "lerobot-calibrate --robot.type=so100_follower" in str(err.value)
        assert bus.port in str(err.value) and f"{ROBOT_ID}.json" in str(err.value)
        assert bus.packets_since(0.0) == []  # refused before touching the bus
    finally:
        bus.close()


def test_motors_holding_another_calibration_get_the_files(tmp_path):
    bus = emulated_arm()
    bus.set_calibration({i: (0, 0, 4095) for i in IDS})  # factory state
    write_calibration(tmp_path / "cal")
    backend = make_backend(bus, tmp_path / "cal")
    try:
        backend.connect()
        for i, (offset, lo, hi) in CALIBRATION.items():
            raw = bus.reg(i, HOMING_OFFSET)
            decoded = -(raw & 0x7FF) if raw & 0x800 else raw  # sign-magnitude, sign bit 11
            assert (decoded, bus.reg(i, MIN_POS), bus.reg(i, MAX_POS)) == (offset, lo, hi)
    finally:
        backend.disconnect()
        bus.close()


def test_a_bus_that_stops_answering_is_reported_and_nothing_more_is_written(arm):
    bus, backend = arm
    backend.connect()
    backend.enable()
    backend.command(backend.read().positions_rad)
    t_silent = time.monotonic()
    bus.silent = True

    def lost():
        try:
            backend.read()
        except DriverError as err:
            return "link lost" in str(err)
        return False

    wait_until(lost, timeout_s=3.0, what="the link to be declared lost")
    t_lost = time.monotonic()
    print(f"link lost detected {t_lost - t_silent:.3f} s after the bus went silent")
    with pytest.raises(DriverError, match="link lost"):
        backend.command(backend.read.__self__._lower + 0.1)
    t_call = time.monotonic()
    backend.disable()
    backend.stop()
    assert time.monotonic() - t_call < 0.05  # no bus traffic attempted, nothing blocks
    assert "link_error" in backend.figures()
    time.sleep(0.3)
    assert bus.packets_since(t_lost + 0.01) == []  # the driver stopped talking to the bus
    t_disc = time.monotonic()
    backend.disconnect()
    assert time.monotonic() - t_disc < 1.0
    assert bus.packets_since(t_lost + 0.01) == []
