"""Where the gripper would be for given joint targets, and where a world point falls in a camera image:
the geometry for drawing planned chunks over the sim's cameras (`asyncvla-ros video`).

It works on its own scratch state of the arm's model, so the episode is never touched.
"""

from __future__ import annotations

import numpy as np

from asyncvla_ros.sim import task
from asyncvla_ros.sim._mujoco import mujoco
from asyncvla_ros.sim.scene import GRIPPER_SITE


class CameraGeometry:
    """Args: the SimArm whose model and image size to use."""

    def __init__(self, arm) -> None:
        self.model = arm.model
        self.image_size_px = arm.config.image_size_px
        self._scratch = mujoco.MjData(self.model)
        self._qpos_adr = np.array([self.model.joint(n).qposadr[0] for n in task.JOINT_NAMES])
        self._site = self.model.site(GRIPPER_SITE).id

    def _pose(self, joint_positions_rad) -> None:
        self._scratch.qpos[self._qpos_adr] = joint_positions_rad
        mujoco.mj_kinematics(self.model, self._scratch)

    def gripper_positions(self, joint_positions_rad) -> np.ndarray:
        """World positions (m, (N, 3)) of the gripper site for N joint configurations ((N, 6), rad)."""
        configs = np.atleast_2d(np.asarray(joint_positions_rad, dtype=np.float64))
        out = np.empty((len(configs), 3))
        for i, q in enumerate(configs):
            self._pose(q)
            out[i] = self._scratch.site_xpos[self._site]
        return out

    def project(self, camera_name: str, points_world, joint_positions_rad) -> np.ndarray:
        """Pixel coordinates (u right, v down; (N, 2)) of world points (m, (N, 3)) in `camera_name`'s
        image with the arm at `joint_positions_rad` (a wrist camera moves with it); nan behind the camera."""
        points = np.atleast_2d(np.asarray(points_world, dtype=np.float64))
        self._pose(np.asarray(joint_positions_rad, dtype=np.float64))
        mujoco.mj_comPos(self.model, self._scratch)  # camera frames come after the bodies' (MuJoCo's mj_camlight)
        mujoco.mj_camlight(self.model, self._scratch)
        cam = self.model.camera(camera_name).id
        pos, rot = self._scratch.cam_xpos[cam], self._scratch.cam_xmat[cam].reshape(3, 3)
        local = (points - pos) @ rot  # camera frame: x right, y up, looking along -z
        size = self.image_size_px
        focal = 0.5 * size / np.tan(np.deg2rad(self.model.cam_fovy[cam]) / 2)
        depth = -local[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.column_stack([size / 2 + focal * local[:, 0] / depth, size / 2 - focal * local[:, 1] / depth])
        uv[depth <= 0] = np.nan
        return uv
