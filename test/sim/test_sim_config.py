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
