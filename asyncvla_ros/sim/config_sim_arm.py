"""Configuration of the simulated SO-101 arm (no MuJoCo import, so nodes can validate parameters cheaply)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from asyncvla_ros.sim.assets import SIMPLIFIERS
from asyncvla_ros.sim.gl_backend import BACKENDS
from asyncvla_ros.sim.task import CAMERA_NAMES, INSTRUCTIONS


def _invalid(field: str, requirement: str, value) -> ValueError:
    return ValueError(f"SimArmConfig.{field} {requirement}, got {value!r}")


@dataclass
class SimArmConfig:
    """Everything that shapes one simulated arm and its task."""

    image_size_px: int = 224  # side of the square camera images, px
    control_period_s: float = 0.05  # simulated time per step(), s (20 Hz); a multiple of the physics timestep
    cameras: tuple[str, ...] = CAMERA_NAMES  # rendered into every observation; () renders nothing
    seed: int = 0  # seed of the first reset() that is given none
    render_backend: str = "auto"  # headless OpenGL: "auto" (EGL, else OSMesa), "egl" or "osmesa"
    # Fixed instruction for every reset, one of SimArm.instructions; "" draws one per reset from the seed.
    instruction: str = ""
    shuffle_target_colours: bool = True  # put the coloured areas on the slots in a seeded random order
    initial_joint_noise_rad: float = 0.02  # uniform noise added to the home pose at reset, rad
    mesh_face_budget: int = 2000  # triangles per robot mesh after simplification; 0 keeps the originals
    # "cluster": numpy vertex clustering, no extra dependency, meets the budget (~24k triangles in all);
    # "quadric": fast-simplification's edge collapse, smoother shapes, stops at ~95k triangles in all.
    mesh_simplifier: str = "cluster"
    # Simplified-mesh cache; "" = $ASYNCVLA_ROS_CACHE, else ~/.cache/asyncvla_ros.
    cache_dir: str = ""

    def __post_init__(self):
        self.cameras = tuple(self.cameras)
        if not isinstance(self.image_size_px, int) or not 16 <= self.image_size_px <= 2048:
            raise _invalid("image_size_px", "must be an int in [16, 2048]", self.image_size_px)
        if not math.isfinite(self.control_period_s) or not 0.001 <= self.control_period_s <= 1.0:
            raise _invalid("control_period_s", "must be in [0.001, 1.0] s", self.control_period_s)
        for camera in self.cameras:
            if camera not in CAMERA_NAMES:
                raise _invalid("cameras", f"may only list {CAMERA_NAMES}", self.cameras)
        if len(set(self.cameras)) != len(self.cameras):
            raise _invalid("cameras", "lists a camera twice", self.cameras)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise _invalid("seed", "must be a non-negative int", self.seed)
        if self.render_backend not in ("auto", *BACKENDS):
            raise _invalid("render_backend", f"must be one of {('auto', *BACKENDS)}", self.render_backend)
        if self.instruction and self.instruction not in INSTRUCTIONS:
            raise _invalid("instruction", f'must be "" (one per reset) or one of {list(INSTRUCTIONS)}',
                           self.instruction)
        if not math.isfinite(self.initial_joint_noise_rad) or not 0.0 <= self.initial_joint_noise_rad <= 0.5:
            raise _invalid("initial_joint_noise_rad", "must be in [0, 0.5] rad", self.initial_joint_noise_rad)
        if self.mesh_simplifier not in SIMPLIFIERS:
            raise _invalid("mesh_simplifier", f"must be one of {SIMPLIFIERS}", self.mesh_simplifier)
        if not isinstance(self.mesh_face_budget, int) or self.mesh_face_budget < 0:
            raise _invalid("mesh_face_budget", "must be an int >= 0", self.mesh_face_budget)
