"""The task: put the red cube in the coloured area the instruction names.

Plain constants and the instruction vocabulary; no MuJoCo import, so configs and nodes can use them.
Lengths are in metres in the world frame: the robot base at the origin on the table top (z = 0),
facing +x.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
CAMERA_NAMES = ("front", "wrist")
CUBE_HALF_SIZE_M = 0.0175
TARGET_HALF_SIZE_M = 0.04  # the areas are 8 cm squares
TABLE_TOP_Z_M = 0.0
# Where target areas may lie: polar (radius m, bearing rad) around the base, all within reach of a
# gripper pointing straight down. A reset puts the areas' colours on these slots in a random order.
# (A gripper pointing down reaches radii of about 0.15-0.27 m near the table.)
TARGET_SLOTS_POLAR = ((0.21, 1.05), (0.21, 0.0), (0.21, -1.05))
# Cube spawn: polar ranges around the base, rejecting spots nearer than CUBE_CLEARANCE_M (in both x
# and y) to a slot centre, so the cube never starts on an area whatever its yaw (area half-width
# 0.04 m + cube half-diagonal 0.025 m + margin).
CUBE_RADIUS_RANGE_M = (0.15, 0.26)
CUBE_BEARING_RANGE_RAD = (-1.3, 1.3)
CUBE_CLEARANCE_M = 0.07
CUBE_RGBA = (0.85, 0.1, 0.1, 1.0)
TARGET_COLOURS = {
    "blue": (0.1, 0.25, 0.9, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "purple": (0.6, 0.2, 0.75, 1.0),
}
INSTRUCTION_TEMPLATE = "put the red cube in the {colour} area"
INSTRUCTIONS = tuple(INSTRUCTION_TEMPLATE.format(colour=colour) for colour in TARGET_COLOURS)
# Privileged scene state recorded with the demonstrations (LeRobot's `observation.environment_state`):
# what the cameras show that the joint state does not. The cube's yaw enters as sin/cos of 4 x yaw (a
# cube looks the same every quarter turn); the target is the area the instruction names, so reading it
# off an image takes the instruction too; then every area by colour, which the images alone show.
# World frame, m. (Datasets recorded before 2026-12-07 end at target_y.)
ENVIRONMENT_STATE_NAMES = ("cube_x", "cube_y", "cube_z", "cube_sin_4yaw", "cube_cos_4yaw", "target_x", "target_y",
                           *(f"{colour}_area_{axis}" for colour in TARGET_COLOURS for axis in "xy"))
# Success: the cube rests (on the table, nearly still) with its centre inside the area (and untouched:
# SimArm.is_success checks the contacts).
REST_HEIGHT_TOLERANCE_M = 0.004
REST_SPEED_M_S = 0.02


def instruction_for(colour: str) -> str:
    """The instruction that asks for the cube to go to the ``colour`` area."""
    if colour not in TARGET_COLOURS:
        raise ValueError(f"unknown target colour {colour!r}, choose from {tuple(TARGET_COLOURS)}")
    return INSTRUCTION_TEMPLATE.format(colour=colour)


def colour_of(instruction: str) -> str:
    """The target colour an instruction names.

    Raises:
        ValueError: the instruction is not one of :data:`INSTRUCTIONS` (they are listed).
    """
    for colour in TARGET_COLOURS:
        if instruction == INSTRUCTION_TEMPLATE.format(colour=colour):
            return colour
    raise ValueError(f"unsupported instruction {instruction!r}; supported: {list(INSTRUCTIONS)}")


def sample_cube_xy(rng: np.random.Generator, max_tries: int = 1000) -> np.ndarray:
    """A cube spawn position (m) clear of every target slot, drawn from ``rng``."""
    slots = np.array([target_slot_xy(i) for i in range(len(TARGET_SLOTS_POLAR))])
    for _ in range(max_tries):
        radius = rng.uniform(*CUBE_RADIUS_RANGE_M)
        bearing = rng.uniform(*CUBE_BEARING_RANGE_RAD)
        xy = np.array([radius * np.cos(bearing), radius * np.sin(bearing)])
        if np.all(np.max(np.abs(slots - xy), axis=1) >= CUBE_CLEARANCE_M):
            return xy
    raise RuntimeError(f"no cube spawn position clear of the target slots in {max_tries} tries")


def target_slot_xy(slot: int) -> np.ndarray:
    """World (x, y) in m of a target slot's centre."""
    radius, bearing = TARGET_SLOTS_POLAR[slot]
    return np.array([radius * np.cos(bearing), radius * np.sin(bearing)])


def environment_state(cube_position, cube_quat_wxyz, target_position, area_positions) -> np.ndarray:
    """The privileged scene state, float32 in ENVIRONMENT_STATE_NAMES order (world frame, m).
    `area_positions`: each area's centre, in TARGET_COLOURS order."""
    w, x, y, z = cube_quat_wxyz
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    if len(area_positions) != len(TARGET_COLOURS):
        raise ValueError(f"area_positions: one per colour {tuple(TARGET_COLOURS)}, got {len(area_positions)}")
    areas = [c for p in area_positions for c in p[:2]]
    return np.array([*cube_position, np.sin(4.0 * yaw), np.cos(4.0 * yaw), *target_position[:2], *areas], dtype=np.float32)


def in_area(cube_position, target_position) -> bool:
    """The cube's centre (xy) lies inside the square area centred at `target_position`."""
    return bool(np.all(np.abs(np.asarray(cube_position[:2]) - np.asarray(target_position[:2])) <= TARGET_HALF_SIZE_M))


def cube_rests_in_area(cube_position, cube_speed_m_s: float, target_position) -> bool:
    """The cube's centre is inside the area and the cube rests on the table, nearly still."""
    inside = in_area(cube_position, target_position)
    resting = abs(cube_position[2] - CUBE_HALF_SIZE_M - TABLE_TOP_Z_M) < REST_HEIGHT_TOLERANCE_M
    return inside and resting and cube_speed_m_s < REST_SPEED_M_S
