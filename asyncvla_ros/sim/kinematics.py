"""Inverse kinematics for the SO-101 arm by damped least squares on MuJoCo's own Jacobians.

The task is a point fixed in the gripper site frame (the grasp point between the jaws) reaching a
world position while the site frame reaches a world orientation. The five arm joints can do both
for a gripper pointing straight down: pan, lift, elbow and wrist flex place the point and tilt the
jaws, and the wrist roll turns them about the vertical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asyncvla_ros.sim._mujoco import mujoco


@dataclass
class IKConfig:
    """Damped-least-squares settings."""

    damping: float = 0.02  # m-equivalent: regularizes near singularities (stretched arm)
    orientation_weight_m_per_rad: float = 0.05  # trades 1 rad of orientation error against this many m
    max_iterations: int = 60
    tolerance_m: float = 2e-4  # stop once the weighted error norm is below this
    max_step_rad: float = 0.3  # per-iteration joint change clamp, keeps the linearization honest

    def __post_init__(self):
        for name in ("damping", "orientation_weight_m_per_rad", "tolerance_m", "max_step_rad"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"IKConfig.{name} must be a positive number, got {value!r}")
        if self.max_iterations < 1:
            raise ValueError(f"IKConfig.max_iterations must be >= 1, got {self.max_iterations!r}")


def orientation_error(current: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Rotation vector (small-angle) that turns ``current`` toward ``desired`` (both 3x3, world)."""
    return 0.5 * sum(np.cross(current[:, i], desired[:, i]) for i in range(3))


def top_down_rotation(jaw_yaw_rad: float) -> np.ndarray:
    """Gripper-site orientation with the jaws pointing down and closing along ``jaw_yaw_rad``.

    The site's x axis runs out along the jaws and its z axis from the fixed to the moving jaw.
    """
    approach = np.array([0.0, 0.0, -1.0])
    jaw = np.array([np.cos(jaw_yaw_rad), np.sin(jaw_yaw_rad), 0.0])
    return np.column_stack([approach, np.cross(jaw, approach), jaw])


class ArmKinematics:
    """Forward and inverse kinematics of the arm joints on a private ``MjData``.

    Args:
        model: the compiled scene.
        arm_joints: names of the joints IK may move, in command order.
        site: name of the gripper site.
        point_offset: the controlled point in the site frame (m).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        arm_joints: tuple[str, ...],
        site: str,
        point_offset: np.ndarray,
        config: IKConfig | None = None,
    ):
        self.model = model
        self.config = config or IKConfig()
        self._data = mujoco.MjData(model)
        self._qpos_adr = np.array([model.joint(j).qposadr[0] for j in arm_joints])
        self._dof_adr = np.array([model.joint(j).dofadr[0] for j in arm_joints])
        self._lower = np.array([model.joint(j).range[0] for j in arm_joints])
        self._upper = np.array([model.joint(j).range[1] for j in arm_joints])
        self._site = model.site(site).id
        self._body = model.site_bodyid[self._site]
        self._offset = np.asarray(point_offset, float)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def _set(self, q: np.ndarray) -> None:
        self._data.qpos[self._qpos_adr] = q
        mujoco.mj_kinematics(self.model, self._data)
        mujoco.mj_comPos(self.model, self._data)

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World position of the controlled point (3,) and site orientation (3, 3) at joints ``q``."""
        self._set(np.asarray(q, float))
        rot = self._data.site_xmat[self._site].reshape(3, 3).copy()
        return self._data.site_xpos[self._site] + rot @ self._offset, rot

    def gravity_torque(self, q: np.ndarray) -> np.ndarray:
        """Joint torques (N m) that hold the arm still at ``q`` against gravity (the other joints at 0)."""
        self._data.qpos[:] = self.model.qpos0
        self._data.qpos[self._qpos_adr] = q
        self._data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self._data)
        return self._data.qfrc_bias[self._dof_adr].copy()

    def solve(
        self, q_init: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Joint positions that put the point at ``target_pos`` (and the site at ``target_rot``).

        Args:
            q_init: starting joints (rad); the solution is the nearby one DLS converges to.
            target_pos: world position (m), (3,).
            target_rot: world orientation (3, 3) or None for position only.

        Returns:
            joints (rad) within their limits, and the final weighted error norm (m).
        """
        cfg = self.config
        q = np.clip(np.asarray(q_init, float).copy(), self._lower, self._upper)
        err_norm = np.inf
        for _ in range(cfg.max_iterations):
            pos, rot = self.forward(q)
            errors = [target_pos - pos]
            mujoco.mj_jac(self.model, self._data, self._jacp, self._jacr, pos, self._body)
            jacs = [self._jacp[:, self._dof_adr]]
            if target_rot is not None:
                errors.append(cfg.orientation_weight_m_per_rad * orientation_error(rot, target_rot))
                jacs.append(cfg.orientation_weight_m_per_rad * self._jacr[:, self._dof_adr])
            err = np.concatenate(errors)
            err_norm = float(np.linalg.norm(err))
            if err_norm < cfg.tolerance_m:
                break
            jac = np.vstack(jacs)  # (3 or 6, n_joints)
            lhs = jac @ jac.T + cfg.damping**2 * np.eye(len(err))
            step = jac.T @ np.linalg.solve(lhs, err)
            step = np.clip(step, -cfg.max_step_rad, cfg.max_step_rad)
            q = np.clip(q + step, self._lower, self._upper)
        return q, err_norm
