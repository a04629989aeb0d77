"""What a predicted chunk looks like in Cartesian space: the geometry behind the RViz markers.

A chunk is L steps of joint targets. :class:`ChunkVisualizer` runs forward kinematics on every step
of the SFM chunk and of the final chunk (after the rater and AFM), colours each step by the rater's
confidence, and picks the joint pose the "ghost" robot shows. Positions are in the robot
description's base frame, in metres; times are offsets from the chunk's stamp, in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.parameters import check_fields, param

from asyncvla_ros.visualization.descriptions import RobotDescription
from asyncvla_ros.visualization.kinematics import KinematicsError, UrdfKinematics

_RED = np.array([0.9, 0.1, 0.1])
_YELLOW = np.array([1.0, 0.85, 0.0])
_GREEN = np.array([0.1, 0.8, 0.2])


@dataclass
class ChunkViewConfig:
    confidence_threshold: float = param(0.5, "rater threshold T (the steps AFM may regenerate lie below it): drawn yellow, "
                                             "lower confidence red-ward", low=0.01, high=0.99)
    ghost_step: int = param(-1, "step of the final chunk the ghost robot shows; -1 = the last", low=-1000, high=1000)

    def __post_init__(self) -> None:
        check_fields(self)


def confidence_rgb(confidence: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Colour per step: red at confidence 0, yellow at ``threshold``, green at 1, linear between.

    Args:
        confidence: (L,) rater outputs; values outside [0, 1] are clipped.

    Returns:
        (L, 3) RGB in [0, 1].
    """
    c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)[:, None]  # (L, 1)
    low = _RED + (_YELLOW - _RED) * (c / threshold)
    high = _YELLOW + (_GREEN - _YELLOW) * ((c - threshold) / (1.0 - threshold))
    return np.where(c < threshold, low, high)


@dataclass
class ChunkView:
    """One chunk in Cartesian space (base frame, m)."""

    final_positions: np.ndarray  # (L, 3) end effector at each final step
    final_rotations: np.ndarray  # (L, 3, 3) end-effector orientation at each final step
    sfm_positions: np.ndarray  # (L, 3) end effector at each SFM step (before rater/AFM)
    sfm_rotations: np.ndarray  # (L, 3, 3)
    confidence: np.ndarray  # (L,) rater output per step
    regenerated: np.ndarray  # (L,) bool: AFM re-noised and regenerated the step
    rgb: np.ndarray  # (L, 3) confidence colour per step
    step_times_s: np.ndarray  # (L,) time of each step after the chunk stamp, s
    ghost_joint_names: tuple[str, ...]  # joints of the ghost pose
    ghost_positions: np.ndarray  # (len(ghost_joint_names),) the final chunk at ghost_step (rad / m)
    ghost_step: int  # the step (0-based) the ghost shows

    @property
    def horizon(self) -> int:
        return len(self.final_positions)


class ChunkVisualizer:
    """Forward kinematics of chunks for one robot description.

    Args:
        description: the robot (URDF, base and end-effector frames).
        config: colours and ghost step.
        ee_frame: overrides the description's end-effector frame ("" keeps it).

    Raises:
        KinematicsError: the URDF or the frame cannot be used.
        FileNotFoundError: the URDF is missing.
    """

    def __init__(self, description: RobotDescription, config: ChunkViewConfig | None = None, ee_frame: str = "") -> None:
        self.description = description
        self.config = config or ChunkViewConfig()
        self.kinematics = UrdfKinematics(description.urdf_path(), ee_frame or description.ee_frame)
        self._base = self.kinematics.neutral.copy()

    def set_measured_state(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Joints a chunk does not command (e.g. a wrist joint the policy leaves alone) take these values."""
        self._base = self.kinematics.configuration(list(names), np.asarray(positions, dtype=np.float64))

    def view(
        self,
        joint_names: Sequence[str],
        actions: np.ndarray,
        sfm_actions: np.ndarray,
        confidence: np.ndarray,
        regenerated: np.ndarray,
        step_period_s: float,
    ) -> ChunkView:
        """The chunk's geometry.

        Args:
            joint_names: names of the action columns (D of them).
            actions: (L, D) final joint targets (rad / m).
            sfm_actions: (L, D) SFM joint targets, or (0, D) when the chunk carries none (then the SFM
                path equals the final one).
            confidence: (L,) rater outputs (or (0,): all drawn as 1).
            regenerated: (L,) bool (or (0,): none regenerated).
            step_period_s: time between steps, s.

        Raises:
            KinematicsError: shapes disagree, values are not finite, or no action column names a URDF joint.
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != len(joint_names) or len(actions) == 0:
            raise KinematicsError(f"actions of shape {actions.shape} for {len(joint_names)} joints (need L >= 1 steps)")
        horizon = len(actions)
        known = set(self.kinematics.joint_names)
        if not known.intersection(joint_names):
            raise KinematicsError(
                f"none of the chunk's joints {list(joint_names)} is in the {self.description.name!r} URDF "
                f"(its joints are {sorted(known)}): wrong description for this robot?")
        sfm_actions = np.asarray(sfm_actions, dtype=np.float64)
        if sfm_actions.size == 0:
            sfm_actions = actions
        elif sfm_actions.shape != actions.shape:
            raise KinematicsError(f"sfm_actions of shape {sfm_actions.shape}, actions of shape {actions.shape}")
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.size == 0:
            confidence = np.ones(horizon)
        regenerated = np.asarray(regenerated, dtype=bool)
        if regenerated.size == 0:
            regenerated = np.zeros(horizon, dtype=bool)
        if confidence.shape != (horizon,) or regenerated.shape != (horizon,):
            raise KinematicsError(
                f"{horizon} steps but {confidence.size} confidences and {regenerated.size} regenerated flags")
        if not np.isfinite(confidence).all():
            raise KinematicsError("non-finite confidence values")
        final_pos, final_rot = self.kinematics.ee_path(joint_names, actions, self._base)
        if sfm_actions is actions:
            sfm_pos, sfm_rot = final_pos, final_rot
        else:
            sfm_pos, sfm_rot = self.kinematics.ee_path(joint_names, sfm_actions, self._base)
        ghost_step = self.config.ghost_step if -horizon <= self.config.ghost_step < horizon else -1
        ghost_step %= horizon  # a step beyond a short chunk shows its last step
        return ChunkView(
            final_positions=final_pos, final_rotations=final_rot, sfm_positions=sfm_pos, sfm_rotations=sfm_rot,
            confidence=confidence, regenerated=regenerated,
            rgb=confidence_rgb(confidence, self.config.confidence_threshold),
            step_times_s=step_period_s * np.arange(1, horizon + 1),  # actions[0] is one period after the stamp
            ghost_joint_names=tuple(joint_names), ghost_positions=actions[ghost_step].copy(), ghost_step=ghost_step,
        )


def rotation_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix (3, 3), as geometry_msgs/Quaternion orders it."""
    m = np.asarray(rot, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    return q / np.linalg.norm(q)

