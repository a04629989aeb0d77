"""A scripted expert for the sim task, from privileged state: joint-position targets per control step.

It plans in Cartesian space for the grasp point between the jaws, with the gripper pointing down and
the jaws square to the cube, and turns each step's point into joint targets with damped least squares
on MuJoCo's Jacobians (:mod:`asyncvla_ros.sim.kinematics`). Phases: hover over the cube, descend,
close, lift, carry over the instructed area, lower, open, retreat. While carrying it steers the cube
(measured), not the gripper, to the goal, so a cube that slipped in the jaws is still placed well.

It also recovers from states its own path never visits, so that it can label a policy's (DAgger):
a cube lost from the jaws, a cube moved while the expert hovers toward it, a descent that the cube
is no longer under, or a cube left outside the area after release, send it back to the hover phase.
:meth:`ScriptedExpert.plan` looks ahead: the chunk of targets it would command from the arm's
current state, simulated in a branch of the physics.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.sim import task
from asyncvla_ros.sim._mujoco import mujoco
from asyncvla_ros.sim.kinematics import ArmKinematics, top_down_rotation
from asyncvla_ros.sim.scene import GRIPPER_SITE, JAW_PAD_GEOMS
from asyncvla_ros.sim.sim_arm import SimArm

logger = logging.getLogger(__name__)

_ARM_JOINTS = task.JOINT_NAMES[:5]


@dataclass
class ExpertConfig:
    """Motion parameters of the scripted expert."""

    hover_height_m: float = 0.065  # grasp point above the table while moving freely
    carry_height_m: float = 0.06  # cube centre above the table while carried
    grasp_height_m: float = 0.019  # grasp point above the table when closing (cube centre 0.0175)
    release_clearance_m: float = 0.003  # cube bottom above the table when letting go
    # Fixed jaw kept this far off the cube face while descending: the cube centred between the open jaws
    # (about 71 mm between the pad faces at gripper_open_rad, cube 35 mm), so a grasp point off by
    # 12 mm in any direction still grasps (20 of 20 seeds; 16 of 20 with the fixed jaw 7 mm off:
    # benchmarks/expert_grasp_tolerance.py).
    fixed_jaw_clearance_m: float = 0.018
    free_speed_m_s: float = 0.25  # grasp-point speed in free space
    careful_speed_m_s: float = 0.08  # grasp-point speed near the table (descend, lift, lower)
    arrive_tolerance_m: float = 0.004  # a moving phase ends when the point is this close to its goal
    gripper_open_rad: float = 0.9  # jaw opening for the approach
    gripper_closed_rad: float = -0.17  # commanded when gripping; the cube stops the jaw before this
    gripper_grasp_rad: float = 0.38  # jaw angle with the cube between the pads (defines the grasp point)
    close_s: float = 0.5  # time spent closing the jaws on the cube, s
    open_s: float = 0.4  # time spent opening them over the target, s
    phase_timeout_s: float = 5.0  # a moving phase that has not arrived by then moves on, s
    # Recovery (start over from the hover phase): the cube this far from the grasp point while it should
    # be held, or this far from where it was when the hover toward it began; or a descent this far
    # (horizontally) from its goal above the cube, m.
    lost_cube_m: float = 0.03
    off_descent_m: float = 0.02

    def __post_init__(self):
        for name in ("hover_height_m", "carry_height_m", "grasp_height_m", "free_speed_m_s",
                     "careful_speed_m_s", "arrive_tolerance_m", "close_s", "open_s", "phase_timeout_s",
                     "lost_cube_m", "off_descent_m"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"ExpertConfig.{name} must be a positive number, got {value!r}")


class Phase(enum.Enum):
    HOVER = enum.auto()
    DESCEND = enum.auto()
    CLOSE = enum.auto()
    LIFT = enum.auto()
    CARRY = enum.auto()
    LOWER = enum.auto()
    OPEN = enum.auto()
    RETREAT = enum.auto()
    DONE = enum.auto()


_CAREFUL = (Phase.DESCEND, Phase.LIFT, Phase.LOWER)
_HOLD_S = {Phase.CLOSE: "close_s", Phase.OPEN: "open_s"}
_GRIPPING = (Phase.CLOSE, Phase.LIFT, Phase.CARRY, Phase.LOWER)


def grasp_point_offset(model: mujoco.MjModel, jaw_angle_rad: float) -> np.ndarray:
    """Midpoint of the two fingertip pads at ``jaw_angle_rad``, in the gripper site frame (m)."""
    data = mujoco.MjData(model)
    data.qpos[model.joint("gripper").qposadr[0]] = jaw_angle_rad
    mujoco.mj_kinematics(model, data)
    site = model.site(GRIPPER_SITE).id
    pads = [data.geom_xpos[model.geom(name).id] for name in JAW_PAD_GEOMS]
    return data.site_xmat[site].reshape(3, 3).T @ (np.mean(pads, axis=0) - data.site_xpos[site])


class ScriptedExpert:
    """Solves the pick-and-place of a :class:`SimArm` for its current instruction.

    Call :meth:`reset` after every ``arm.reset()``, then ``arm.step(expert.act())`` each control step.
    """

    def __init__(self, arm: SimArm, config: ExpertConfig | None = None):
        self.arm = arm
        self.config = config or ExpertConfig()
        model = arm.model
        offset = grasp_point_offset(model, self.config.gripper_grasp_rad)
        self._kin = ArmKinematics(model, _ARM_JOINTS, GRIPPER_SITE, offset)
        actuators = [model.actuator(n).id for n in _ARM_JOINTS]
        self._kp = model.actuator_gainprm[actuators, 0]  # position actuators: torque = kp (ctrl - q)
        self._dt = arm.config.control_period_s
        anchor_data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, anchor_data)
        self._pan_axis_xy = anchor_data.xanchor[model.joint("shoulder_pan").id][:2].copy()
        self.reset()

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def done(self) -> bool:
        return self._phase is Phase.DONE

    def reset(self) -> None:
        """Forget the last episode; read the new one from the arm."""
        self._q_cmd = self.arm.joint_positions()[:5]
        self._point_cmd = self._kin.forward(self._q_cmd)[0]
        self._start_over()

    def _start_over(self) -> None:
        """Back to the hover phase, with a grasp chosen for where the cube is now."""
        self._phase = Phase.HOVER
        self._steps = 0
        cube, _ = self.arm.cube_pose()
        self._grasp_cube_xy = cube[:2].copy()
        self._grasp_bearing = self._bearing(cube)
        self._jaw_yaw = self._choose_jaw_yaw()

    _STATE = ("_phase", "_steps", "_q_cmd", "_point_cmd", "_grasp_cube_xy", "_grasp_bearing", "_jaw_yaw")

    def plan(self, length: int) -> np.ndarray:
        """The (length, 6) targets the expert would command over the next `length` steps from the arm's
        current state, as :meth:`act` gives them, run in a branch of the arm's physics: the arm and the
        expert are left as they were."""
        if length < 1:
            raise ValueError(f"plan length must be >= 1, got {length}")
        saved = {name: getattr(self, name) for name in self._STATE}
        try:
            with self.arm.branch():
                targets = [self.act()]
                for _ in range(length - 1):
                    self.arm.step(targets[-1])
                    targets.append(self.act())
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
        return np.stack(targets)

    def _needs_restart(self, point_meas: np.ndarray) -> bool:
        """Whether the current phase can no longer succeed from here (see the module docstring)."""
        cfg = self.config
        cube, _ = self.arm.cube_pose()
        if self._phase in (Phase.LIFT, Phase.CARRY, Phase.LOWER):
            return bool(np.linalg.norm(point_meas - cube) > cfg.lost_cube_m)
        if self._phase is Phase.HOVER:  # the cube was moved: choose the grasp (jaw yaw) for its new pose
            return bool(np.linalg.norm(cube[:2] - self._grasp_cube_xy) > cfg.lost_cube_m)
        if self._phase is Phase.DESCEND:
            return bool(np.linalg.norm(self._goal(point_meas)[:2] - point_meas[:2]) > cfg.off_descent_m)
        if self._phase in (Phase.RETREAT, Phase.DONE):
            target = self.arm.target_position()
            resting = cube[2] < task.TABLE_TOP_Z_M + task.CUBE_HALF_SIZE_M + 0.005
            return resting and bool(np.any(np.abs(cube[:2] - target[:2]) > task.TARGET_HALF_SIZE_M))
        return False

    def _bearing(self, point: np.ndarray) -> float:
        """Direction (rad) of a point seen from the pan axis."""
        return float(np.arctan2(point[1] - self._pan_axis_xy[1], point[0] - self._pan_axis_xy[0]))

    def _choose_jaw_yaw(self) -> float:
        """The cube face direction (yaw + k 90 deg) that needs the least wrist roll.

        Measured relative to the arm's bearing: panning turns the jaws with it, so the roll needed
        at the cube is the jaws' current angle to the arm, not to the world.
        """
        _, quat = self.arm.cube_pose()
        cube_yaw = 2.0 * np.arctan2(quat[3], quat[0])
        point, rot = self._kin.forward(self._q_cmd)
        current = np.arctan2(rot[1, 2], rot[0, 2])  # site z axis = fixed -> moving jaw
        same_roll = current + self._grasp_bearing - self._bearing(point)
        candidates = cube_yaw + np.arange(4) * np.pi / 2
        turn = np.angle(np.exp(1j * (candidates - same_roll)))
        return float(same_roll + turn[np.argmin(np.abs(turn))])

    def _target_jaw_yaw(self, point: np.ndarray) -> float:
        """Jaw direction at ``point``: the grasp direction, turned with the arm once the cube is held.

        Holding the world direction instead would ask the wrist roll to undo every pan, and carries
        across the table would run it into its limit.
        """
        if self._phase not in (Phase.CARRY, Phase.LOWER, Phase.OPEN, Phase.RETREAT, Phase.DONE):
            return self._jaw_yaw
        turn = np.angle(np.exp(1j * (self._bearing(point) - self._grasp_bearing)))
        return self._jaw_yaw + float(turn)

    def _goal(self, measured_point: np.ndarray) -> np.ndarray:
        """Where the grasp point should go in a moving phase."""
        cfg = self.config
        cube, _ = self.arm.cube_pose()
        target = self.arm.target_position()
        jaw = np.array([np.cos(self._jaw_yaw), np.sin(self._jaw_yaw), 0.0])
        table = task.TABLE_TOP_Z_M
        # Grasp point relative to the cube while carried, so the cube itself is steered.
        hold = measured_point - cube
        if self._phase is Phase.HOVER:
            return np.array([*(cube[:2] - cfg.fixed_jaw_clearance_m * jaw[:2]), table + cfg.hover_height_m])
        if self._phase is Phase.DESCEND:
            return np.array([*(cube[:2] - cfg.fixed_jaw_clearance_m * jaw[:2]), table + cfg.grasp_height_m])
        if self._phase is Phase.LIFT:
            return np.array([*measured_point[:2], table + cfg.carry_height_m + hold[2]])
        if self._phase is Phase.CARRY:
            return np.array([*(target[:2] + hold[:2]), table + cfg.carry_height_m + hold[2]])
        if self._phase is Phase.LOWER:
            rest_z = table + task.CUBE_HALF_SIZE_M + cfg.release_clearance_m
            return np.array([*(target[:2] + hold[:2]), rest_z + hold[2]])
        if self._phase is Phase.RETREAT:
            return np.array([*measured_point[:2], table + cfg.hover_height_m])
        raise RuntimeError(f"expert phase {self._phase.name} has no position goal")

    def act(self) -> np.ndarray:
        """Joint-position targets (rad, (6,), in ``arm.joint_names`` order) for the next control step."""
        cfg = self.config
        q_meas = self.arm.joint_positions()[:5]
        point_meas, _ = self._kin.forward(q_meas)
        if self._needs_restart(point_meas):
            logger.debug("expert starts over from phase %s", self._phase.name)
            self._start_over()
        while self._phase is not Phase.DONE:
            elapsed_s = self._steps * self._dt
            if self._phase in _HOLD_S:
                if elapsed_s < getattr(cfg, _HOLD_S[self._phase]) - 1e-9:
                    break
            else:
                goal = self._goal(point_meas)
                arrived = np.linalg.norm(goal - point_meas) < cfg.arrive_tolerance_m
                if not arrived and elapsed_s < cfg.phase_timeout_s:
                    break
                if not arrived:
                    logger.debug("expert phase %s timed out %.1f mm from its goal", self._phase.name,
                                 1000 * np.linalg.norm(goal - point_meas))
            self._phase = Phase(self._phase.value + 1)
            self._steps = 0

        if self._phase not in _HOLD_S and self._phase is not Phase.DONE:
            goal = self._goal(point_meas)
            speed = cfg.careful_speed_m_s if self._phase in _CAREFUL else cfg.free_speed_m_s
            # Move the commanded point toward the goal, corrected by the measured error so that
            # tracking lag under load does not accumulate.
            error = goal - point_meas
            step = error * min(1.0, speed * self._dt / max(np.linalg.norm(error), 1e-9))
            self._point_cmd = point_meas + step
            rotation = top_down_rotation(self._target_jaw_yaw(self._point_cmd))
            q_ik, _ = self._kin.solve(self._q_cmd, self._point_cmd, rotation)
            self._q_cmd = q_ik
        self._steps += 1

        gripper = cfg.gripper_closed_rad if self._phase in _GRIPPING else cfg.gripper_open_rad
        # Feed gravity forward: a position servo sags by torque / kp below its target.
        q_arm = self._q_cmd + self._kin.gravity_torque(self._q_cmd) / self._kp
        lower, upper = self.arm.joint_limits_rad
        return np.clip(np.append(q_arm, gripper), lower, upper)


def run_episode(
    arm: SimArm, seed: int, instruction: str | None = None, max_duration_s: float = 20.0
) -> bool:
    """Reset ``arm`` with ``seed``, let the expert act until success or ``max_duration_s`` of sim time.

    Returns:
        Whether the episode succeeded.
    """
    arm.reset(seed, instruction=instruction)
    expert = ScriptedExpert(arm)
    for _ in range(round(max_duration_s / arm.config.control_period_s)):
        arm.step(expert.act())
        if expert.done and arm.is_success():
            return True
    return arm.is_success()
