"""The one disturbance of the sim task: the cube put down elsewhere mid-episode. The closed-loop eval's
disturbance conditions move it for the policy to recover from, the displaced demonstrations
(`demos --displace-fraction`) for the expert to show the recovery."""

from __future__ import annotations

import numpy as np

from asyncvla_ros.sim import task

DISPLACE_MIN_MOVE_M = 0.06  # the cube goes at least this far from where it was


def displace_cube(arm, seed: int) -> bool:
    """Put the cube of `arm` (a SimArm) down at a fresh spawn position at least DISPLACE_MIN_MOVE_M from
    where it is, with a new yaw, both drawn from `seed`. False, and nothing moved, when the arm touches
    the cube or it is off the table (a grasp in progress is not undone)."""
    position, _ = arm.cube_pose()
    if arm.cube_touches_robot() or position[2] > task.TABLE_TOP_Z_M + task.CUBE_HALF_SIZE_M + 0.005:
        return False
    rng = np.random.default_rng([int(seed), 0xD15])
    for _ in range(100):
        xy = task.sample_cube_xy(rng)
        if np.linalg.norm(xy - position[:2]) >= DISPLACE_MIN_MOVE_M:
            arm.move_cube(xy, float(rng.uniform(-np.pi / 4, np.pi / 4)))
            return True
    return False
