"""The scripted expert and the kinematics it uses."""

import numpy as np
import pytest

from test.sim._support import skip_without_sim

skip_without_sim()

from asyncvla_ros.sim import task  # noqa: E402
from asyncvla_ros.sim.expert import Phase, ScriptedExpert, grasp_point_offset, run_episode  # noqa: E402
from asyncvla_ros.sim.kinematics import ArmKinematics, top_down_rotation  # noqa: E402
from asyncvla_ros.sim.sim_arm import HOME_POSITIONS_RAD  # noqa: E402


@pytest.mark.parametrize("instruction", task.INSTRUCTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_expert_solves_every_instruction(physics_arm, seed, instruction):
    assert run_episode(physics_arm, seed, instruction=instruction, max_duration_s=15.0)
    # Only the instructed area holds the cube: the instruction, not the layout, decided the goal.
    cube, _ = physics_arm.cube_pose()
    for colour in task.TARGET_COLOURS:
        inside = np.all(np.abs(cube[:2] - physics_arm.target_position(colour)[:2]) <= task.TARGET_HALF_SIZE_M)
        assert inside == (colour == task.colour_of(instruction))


def carrying(arm, seed: int) -> ScriptedExpert:
    """An expert run on `arm` from `seed` until it carries the cube."""
    arm.reset(seed)
    expert = ScriptedExpert(arm)
    for _ in range(300):
        arm.step(expert.act())
        if expert.phase is Phase.CARRY:
            return expert
    raise AssertionError(f"the expert did not reach the carry phase in 300 steps (phase {expert.phase.name})")


def test_no_success_while_the_cube_is_held(physics_arm):
    carrying(physics_arm, 2)
    assert physics_arm.cube_pose()[0][2] > task.CUBE_HALF_SIZE_M + 0.02  # lifted
    assert physics_arm.cube_touches_robot()
    assert not physics_arm.is_success()


def test_expert_targets_are_valid_commands(physics_arm):
    physics_arm.reset(4)
    expert = ScriptedExpert(physics_arm)
    lower, upper = physics_arm.joint_limits_rad
    for _ in range(40):
        target = expert.act()
        assert target.shape == (6,) and np.all(np.isfinite(target))
        assert np.all(target >= lower) and np.all(target <= upper)
        physics_arm.step(target)


def test_ik_reaches_a_top_down_pose_and_forward_agrees(physics_arm):
    model = physics_arm.model
    kin = ArmKinematics(model, task.JOINT_NAMES[:5], "gripperframe", grasp_point_offset(model, 0.38))
    goal, rot_goal = np.array([0.2, 0.05, 0.04]), top_down_rotation(0.3)
    q, error = kin.solve(HOME_POSITIONS_RAD[:5], goal, rot_goal)
    assert error < 1e-3
    point, rot = kin.forward(q)
    np.testing.assert_allclose(point, goal, atol=1e-3)
    np.testing.assert_allclose(rot, rot_goal, atol=1e-2)


def test_top_down_rotation_is_a_rotation():
    rot = top_down_rotation(1.1)
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot[:, 0], [0, 0, -1])  # jaws point down


def test_expert_works_at_another_control_rate():
    from asyncvla_ros.sim import SimArm, SimArmConfig

    arm = SimArm(SimArmConfig(cameras=(), control_period_s=0.1))
    try:
        assert run_episode(arm, 5, instruction=task.INSTRUCTIONS[0], max_duration_s=15.0)
    finally:
        arm.close()


def test_plan_looks_ahead_in_a_branch_and_leaves_arm_and_expert_as_they_were(physics_arm):
    physics_arm.reset(3)
    expert = ScriptedExpert(physics_arm)
    for _ in range(25):
        physics_arm.step(expert.act())
    joints, cube, phase = physics_arm.joint_positions(), physics_arm.cube_pose()[0], expert.phase
    plan = expert.plan(10)
    assert plan.shape == (10, 6)
    assert np.array_equal(physics_arm.joint_positions(), joints) and np.array_equal(physics_arm.cube_pose()[0], cube)
    assert expert.phase is phase
    # What the look-ahead says is what the expert then does, step for step.
    for planned in plan:
        done = expert.act()
        np.testing.assert_allclose(done, planned, atol=1e-9)
        physics_arm.step(done)
    with physics_arm.branch(), pytest.raises(RuntimeError, match="inside a branch"):
        with physics_arm.branch():
            pass
    with pytest.raises(ValueError, match=">= 1"):
        expert.plan(0)


def test_expert_starts_over_when_the_cube_leaves_its_jaws_and_still_solves_the_episode(physics_arm):
    expert = carrying(physics_arm, 2)
    physics_arm.move_cube(task.sample_cube_xy(np.random.default_rng(7)))  # out of the jaws, elsewhere
    physics_arm.step(expert.act())
    assert expert.phase is Phase.HOVER
    for _ in range(400):
        physics_arm.step(expert.act())
        if expert.done and physics_arm.is_success():
            break
    assert expert.done and physics_arm.is_success()
