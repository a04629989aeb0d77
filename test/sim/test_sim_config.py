"""SimArmConfig and the task vocabulary: importable and validated without MuJoCo."""

import pytest

from asyncvla_ros.sim.config_sim_arm import SimArmConfig
from asyncvla_ros.sim.task import INSTRUCTIONS, TARGET_COLOURS, colour_of, instruction_for


def test_defaults_are_valid():
    config = SimArmConfig()
    assert config.image_size_px == 224
    assert config.control_period_s == pytest.approx(0.05)
    assert config.cameras == ("front", "wrist")


@pytest.mark.parametrize(
    "field, value",
    [
        ("image_size_px", 8),
        ("image_size_px", 224.0),
        ("control_period_s", 0.0),
        ("control_period_s", float("nan")),
        ("cameras", ("front", "top")),
        ("cameras", ("front", "front")),
        ("seed", -1),
        ("render_backend", "glfw"),
        ("instruction", "put the cube somewhere"),
        ("initial_joint_noise_rad", -0.1),
        ("mesh_face_budget", -5),
        ("mesh_simplifier", "lod"),
    ],
)
def test_bad_field_is_named_in_the_error(field, value):
    with pytest.raises(ValueError, match=field):
        SimArmConfig(**{field: value})


def test_instructions_name_distinct_areas():
    assert len(INSTRUCTIONS) >= 2
    assert len(set(INSTRUCTIONS)) == len(INSTRUCTIONS)
    for colour in TARGET_COLOURS:
        assert colour_of(instruction_for(colour)) == colour


def test_unknown_instruction_lists_the_supported_ones():
    with pytest.raises(ValueError, match="supported"):
        colour_of("put the red cube in the orange area")


def test_the_success_rule_and_the_environment_state_without_mujoco():
    import numpy as np

    from asyncvla_ros.sim import task

    target = np.array([0.2, 0.1, 0.0])
    on_table = task.TABLE_TOP_Z_M + task.CUBE_HALF_SIZE_M
    assert task.cube_rests_in_area([0.2, 0.1, on_table], 0.0, target)
    assert task.cube_rests_in_area([0.2 + 0.039, 0.1 - 0.039, on_table + 0.003], 0.019, target)
    assert not task.cube_rests_in_area([0.2 + 0.041, 0.1, on_table], 0.0, target)  # centre outside the area
    assert not task.cube_rests_in_area([0.2, 0.1, on_table + 0.01], 0.0, target)  # held above the table
    assert not task.cube_rests_in_area([0.2, 0.1, on_table], 0.05, target)  # still sliding
    # A quarter turn looks the same: yaw enters as 4 x yaw.
    yaw = 0.3
    quat = lambda a: [np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)]
    areas = [[0.1, 0.2, 0.0], target, [0.3, -0.2, 0.0]]
    state = task.environment_state([0.1, -0.05, on_table], quat(yaw), target, areas)
    assert state.dtype == np.float32 and len(state) == len(task.ENVIRONMENT_STATE_NAMES) == 13
    np.testing.assert_allclose(state, [0.1, -0.05, on_table, np.sin(4 * yaw), np.cos(4 * yaw), 0.2, 0.1,
                                       0.1, 0.2, 0.2, 0.1, 0.3, -0.2], atol=1e-6)
    assert task.ENVIRONMENT_STATE_NAMES[7:9] == ("blue_area_x", "blue_area_y")
    np.testing.assert_allclose(task.environment_state([0.1, -0.05, on_table], quat(yaw + np.pi / 2), target, areas), state,
                               atol=1e-6)
    with pytest.raises(ValueError, match="one per colour"):
        task.environment_state([0.1, -0.05, on_table], quat(yaw), target, areas[:2])
