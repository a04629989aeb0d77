"""ExpertTeleop: the scripted expert following a world simulated elsewhere, through pose snapshots only,
one control period behind (as through the graph), solves the task; nothing is commanded while the driver
is inactive, and the expert starts from there once it is active; a new seed is a new episode; a
snapshot of another scene is refused; several episodes follow each other through the sim driver's
in-place reset."""

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


def test_several_episodes_in_one_run_through_the_sim_driver_reset():
    """The expert's episode schedule against the sim driver backend: after a solved episode (or one given up
    at the timeout) and the pause, the next scene's seed is asked for once, the driver resets in place, and
    the expert starts and solves that episode; after the run's episodes nothing more is asked."""
    skip_without_sim()
    from asyncvla_ros.drivers.sim_backend import SimBackend, SimBackendConfig
    from asyncvla_ros.sim.teleop import ExpertEpisodesConfig, ExpertTeleop

    backend = SimBackend(SimBackendConfig(episode_seed=7))
    teleop = ExpertTeleop(ExpertEpisodesConfig(episodes=3, timeout_s=20.0, pause_s=0.5))
    backend.connect()
    backend.enable()
    seed, asked = 7, []
    try:
        for _ in range(1500):
            snap, instruction = backend.world_snapshot()
            target = teleop.command(snap, seed, instruction)
            backend.command(target)
            backend.update(0)
            if (next_seed := teleop.next_episode()) is not None:
                asked.append((next_seed, teleop.solved, snap.time_s))
                instruction = backend.reset_episode(next_seed)
                seed = next_seed
                assert backend.arm.pose_snapshot().time_s == 0.0 and instruction == backend.arm.instruction
            if teleop.episodes == 3 and teleop.solved == 3:
                break
        assert [(s, solved) for s, solved, _ in asked] == [(8, 1), (9, 2)], asked
        assert (teleop.episodes, teleop.solved) == (3, 3)
        for _ in range(30):  # the run's episodes are done: the last one is never followed by a reset
            snap, instruction = backend.world_snapshot()
            backend.command(teleop.command(snap, seed, instruction))
            backend.update(0)
            assert teleop.next_episode() is None
        # An episode that is not solved in time is given up, and the next one follows after the pause.
        quick = ExpertTeleop(ExpertEpisodesConfig(episodes=2, timeout_s=1.0, pause_s=0.5))
        backend.reset_episode(11)
        ticks = 0
        while (given_up := quick.next_episode()) is None:
            snap, instruction = backend.world_snapshot()
            backend.command(quick.command(snap, 11, instruction))
            backend.update(0)
            ticks += 1
        assert given_up == 12 and quick.solved == 0 and ticks == round(1.5 / backend.period_s) + 1
        # A request nobody answers (the world stays in this episode) is repeated after REASK_S, not lost.
        from asyncvla_ros.sim.teleop import REASK_S

        repeats = []
        for _ in range(round(REASK_S / backend.period_s) + 1):
            snap, instruction = backend.world_snapshot()
            backend.command(quick.command(snap, 11, instruction))
            backend.update(0)
            repeats.append(quick.next_episode())
        assert [r for r in repeats if r is not None] == [12] and repeats[-1] == 12
        quick.close()
        from asyncvla_ros.drivers import DriverError

        with pytest.raises(DriverError, match="seed must be in"):
            backend.reset_episode(-1)
    finally:
        backend.disconnect()
        teleop.close()
