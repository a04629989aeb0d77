"""The table-top scene around the SO-101: a table, a red cube, coloured target areas, two cameras.

The robot base sits at the world origin on the table top (z = 0) and faces +x. Everything else is
added here with ``mujoco.MjSpec`` on top of the package's robot model, whose meshes are swapped for
the simplified copies from :mod:`asyncvla_ros.sim.assets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asyncvla_ros.sim import assets
from asyncvla_ros.sim._mujoco import mujoco
from asyncvla_ros.sim.task import (
    CUBE_HALF_SIZE_M,
    CUBE_RGBA,
    TABLE_TOP_Z_M,
    TARGET_COLOURS,
    TARGET_HALF_SIZE_M,
)

GRIPPER_SITE = "gripperframe"
JAW_PAD_GEOMS = ("fixed_jaw_pad", "moving_jaw_pad")
_TABLE_HALF_SIZE_M = (0.36, 0.42, 0.02)
_TABLE_CENTRE_XY_M = (0.16, 0.0)
_FLOOR_Z_M = -0.75


@dataclass(frozen=True)
class CameraSpec:
    """A camera's pose: in the world (``front``) or in the gripper body (``wrist``)."""

    name: str
    body: str  # "world" or a robot body name
    pos: tuple[float, float, float]  # m, in the body frame
    look_at: tuple[float, float, float]  # m, a point in the body frame the optical axis passes through
    up: tuple[float, float, float]  # approximate image-up direction in the body frame
    fovy_deg: float


CAMERAS = (
    CameraSpec("front", "world", (0.52, 0.0, 0.36), (0.14, 0.0, 0.04), (0.0, 0.0, 1.0), 55.0),
    # On the gripper body behind the wrist motor, looking down the jaws (body -z) at the grasp point.
    CameraSpec("wrist", "gripper", (0.0, 0.055, -0.03), (0.0, 0.0, -0.11), (0.0, 1.0, 0.0), 75.0),
)


def _look_at_quat(pos, look_at, up) -> np.ndarray:
    """Camera orientation (w, x, y, z) whose -z axis points from ``pos`` to ``look_at``."""
    forward = np.asarray(look_at, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    rot = np.column_stack([right, true_up, -forward])  # columns: camera x, y, z in the body frame
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(-1))
    return quat


def build_spec(
    mesh_face_budget: int, cache_dir: Path | None, image_size_px: int, mesh_simplifier: str = "cluster"
) -> mujoco.MjSpec:
    """The scene as an ``MjSpec``, ready to compile.

    Args:
        mesh_face_budget: triangles per robot mesh after simplification (0 keeps the originals).
        mesh_simplifier: ``"cluster"`` or ``"quadric"``, see :func:`asyncvla_ros.sim.assets.simplify_mesh`.
        cache_dir: cache for the simplified meshes (None: the default cache).
        image_size_px: largest offscreen image side that renderers will ask for.
    """
    asset_dir = assets.so101_asset_dir()
    spec = mujoco.MjSpec.from_file(str(asset_dir / assets.ROBOT_XML))
    mesh_dir = asset_dir / (spec.meshdir or "")
    sources = {mesh.name: mesh_dir / mesh.file for mesh in spec.meshes}
    simplified = assets.simplified_mesh_paths(sources, mesh_face_budget, cache_dir, mesh_simplifier)
    for mesh in spec.meshes:
        mesh.file = str(simplified[mesh.name])

    # The fingertip pads ship on a collision bit nothing else uses; put them on the default bit so
    # they touch the cube. Without them the jaws' convex hulls pinch the cube at two points.
    for name in JAW_PAD_GEOMS:
        pad = spec.geom(name)
        pad.contype, pad.conaffinity = 1, 1
        pad.friction = [1.5, 0.02, 0.001]
        pad.condim = 4  # torsional friction stops the held cube from spinning about the pad normal

    spec.option.noslip_iterations = 4  # keeps a pinched cube from creeping out of the jaws
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.visual.global_.offwidth = max(image_size_px, 64)
    spec.visual.global_.offheight = max(image_size_px, 64)
    spec.visual.quality.offsamples = 0  # no multisampling: ~2x faster on a software renderer
    spec.visual.quality.shadowsize = 0
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.35, 0.35, 0.35]

    world = spec.worldbody
    light = world.add_light(pos=[0.2, -0.3, 1.2], dir=[0.0, 0.25, -1.0])
    light.diffuse = [0.6, 0.6, 0.6]
    light.castshadow = False
    world.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.01], pos=[0, 0, _FLOOR_Z_M],
        rgba=[0.35, 0.37, 0.4, 1],
    )
    world.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(_TABLE_HALF_SIZE_M),
        pos=[*_TABLE_CENTRE_XY_M, TABLE_TOP_Z_M - _TABLE_HALF_SIZE_M[2]], rgba=[0.78, 0.74, 0.68, 1],
    )
    for colour, rgba in TARGET_COLOURS.items():
        # A mocap body, so a reset moves it through MjData and the model never changes after
        # compiling. Visual only (no collision): a 1 mm paint patch the cube can slide over.
        area = world.add_body(name=f"target_{colour}", mocap=True, pos=[0.0, 0.0, TABLE_TOP_Z_M])
        area.add_geom(
            name=f"target_{colour}", type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[TARGET_HALF_SIZE_M, TARGET_HALF_SIZE_M, 0.0005], pos=[0.0, 0.0, 0.0005],
            rgba=list(rgba), contype=0, conaffinity=0,
        )

    cube = world.add_body(name="cube", pos=[0.2, 0.0, TABLE_TOP_Z_M + CUBE_HALF_SIZE_M])
    cube.add_freejoint(name="cube")
    cube.add_geom(
        name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF_SIZE_M] * 3, mass=0.03,
        rgba=list(CUBE_RGBA), friction=[1.0, 0.02, 0.001], condim=4,
    )

    for cam in CAMERAS:
        parent = world if cam.body == "world" else spec.body(cam.body)
        parent.add_camera(
            name=cam.name, pos=list(cam.pos), quat=list(_look_at_quat(cam.pos, cam.look_at, cam.up)),
            fovy=cam.fovy_deg,
        )
    return spec
