"""ExpertTeleop: the scripted expert following a world simulated elsewhere, through pose snapshots only,
one control period behind (as through the graph), solves the task; nothing is commanded while the driver
is inactive, and the expert starts from there once it is active; a new seed is a new episode; a
snapshot of another scene is refused."""

import numpy as np
import pytest

from ._support import skip_without_sim


@pytest.fixture(scope="module")
def worlds():
    skip_without_sim()
    from asyncvla_ros.sim import SimArm, SimArmConfig
    from asyncvla_ros.sim.teleop import ExpertTeleop

    sim, teleop = SimArm(SimArmConfig(cameras=())), ExpertTeleop()
    yield sim, teleop
    sim.close()
    teleop.close()


def drive(sim, teleop, seed, inactive_ticks=0, max_ticks=400):
    """Run an episode on `sim` with `teleop` commanding from its snapshots; True when solved."""
    observation = sim.reset(seed)
    target = observation.joint_positions_rad
    for tick in range(max_ticks):
        command = teleop.command(sim.pose_snapshot(), seed, sim.instruction, driver_active=tick >= inactive_ticks)
        if tick < inactive_ticks:
            assert command is None
        else:
            target = command
        sim.step(target)
        if teleop.expert.done and sim.is_success():
            return True
    return False


def test_the_expert_solves_episodes_from_snapshots_one_tick_behind(worlds):
    sim, teleop = worlds
    before = teleop.episodes, teleop.solved
    assert all(drive(sim, teleop, seed) for seed in (3, 4))
    assert (teleop.episodes - before[0], teleop.solved - before[1]) == (2, 2)


def test_nothing_is_commanded_while_the_driver_is_inactive_and_the_expert_solves_after(worlds):
    sim, teleop = worlds
    assert drive(sim, teleop, 5, inactive_ticks=150)  # 7.5 s inactive, the expert's phase timeout is 5 s


def test_a_snapshot_of_another_scene_is_refused(worlds):
    from asyncvla_ros.sim.render import PoseSnapshot

    sim, teleop = worlds
    sim.reset(0)
    snap = sim.pose_snapshot()
    with pytest.raises(ValueError, match="does not fit this scene"):
        teleop.command(PoseSnapshot(snap.time_s, snap.qpos[:-1], snap.mocap_pos, snap.mocap_quat), 0, sim.instruction)
    with pytest.raises(ValueError, match="unsupported instruction"):
        teleop.command(snap, 0, "wave")
    assert np.isfinite(teleop.command(snap, 0, sim.instruction)).all()
