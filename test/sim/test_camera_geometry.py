"""The overlay geometry: a projected world point lands on what the camera shows there, and computing
it leaves the episode as it was."""

import numpy as np

from ._support import skip_without_sim

skip_without_sim()

from asyncvla_ros.sim import SimArm, SimArmConfig  # noqa: E402
from asyncvla_ros.sim.camera_geometry import CameraGeometry  # noqa: E402


def test_the_projected_cube_lands_on_its_red_pixels_and_the_episode_is_untouched():
    with SimArm(SimArmConfig(image_size_px=112, cameras=("front", "wrist"))) as arm:
        obs = arm.reset(seed=7)
        geometry = CameraGeometry(arm)
        before = arm.joint_positions()
        u, v = geometry.project("front", [arm.cube_pose()[0]], obs.joint_positions_rad)[0]
        img = obs.images["front"].astype(int)
        ys, xs = np.nonzero((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80))
        assert len(xs) > 20 and abs(u - xs.mean()) < 4 and abs(v - ys.mean()) < 4  # the cube's centre vs its visible faces
        grip = geometry.gripper_positions([obs.joint_positions_rad, obs.joint_positions_rad + 0.2])
        assert grip.shape == (2, 3) and np.linalg.norm(grip[0] - grip[1]) > 0.01
        np.testing.assert_array_equal(arm.joint_positions(), before)
        behind = geometry.project("front", [[5.0, 0.0, 0.1]], obs.joint_positions_rad)  # far behind the front camera
        assert np.isnan(behind).all()
