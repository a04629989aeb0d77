"""End-effector forward kinematics of a robot described by a URDF, computed with Pinocchio.

Pinocchio (``pip install pin``) is the maintained rigid-body kinematics library of the ROS and
robotics-research world: it parses URDF (fixed, revolute, continuous, prismatic joints), is tested
against analytic results upstream, and computes a frame placement in microseconds. Its only cost
here is the wheel itself; no ROS install is needed.

Frames: every position is in the URDF's root link frame (the robot base), in metres. The end
effector is a named URDF frame (a link or a joint); see
:mod:`asyncvla_ros.visualization.descriptions` for the one each robot uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class KinematicsError(ValueError):
    """The URDF, the end-effector frame or the joint values cannot be used."""


def _pinocchio():
    try:
        import pinocchio
    except ImportError as exc:
        raise ImportError(
            "forward kinematics for the chunk visualizer needs Pinocchio: pip install pin"
        ) from exc
    return pinocchio


class UrdfKinematics:
    """Placement of one URDF frame as a function of named joint positions.

    Args:
        urdf: path of the URDF file, or its XML text.
        ee_frame: name of the end-effector frame (a link or joint name of the URDF).

    Raises:
        KinematicsError: the URDF does not parse or lacks ``ee_frame`` (the message lists the frames).
    """

    def __init__(self, urdf: str | Path, ee_frame: str) -> None:
        pin = _pinocchio()
        self._pin = pin
        text = Path(urdf).read_text() if isinstance(urdf, Path) or not str(urdf).lstrip().startswith("<") else str(urdf)
        try:
            self.model = pin.buildModelFromXML(text)
        except (RuntimeError, ValueError) as exc:
            raise KinematicsError(f"the URDF does not parse: {exc}") from exc
        self.data = self.model.createData()
        frames = [f.name for f in self.model.frames]
        if not self.model.existFrame(ee_frame):
            raise KinematicsError(f"end-effector frame {ee_frame!r} is not in the URDF; its frames are {frames}")
        self.ee_frame = ee_frame
        self._ee_id = self.model.getFrameId(ee_frame)
        # Movable joints (name -> (index in q, number of q values: 1, or 2 for continuous (cos, sin))).
        self._joints = {
            self.model.names[j]: (self.model.joints[j].idx_q, self.model.joints[j].nq)
            for j in range(1, self.model.njoints)
        }
        self.neutral = pin.neutral(self.model)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The URDF's movable joints, in the model's order."""
        return tuple(self._joints)

    def configuration(self, names: Sequence[str], positions: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Pinocchio configuration vector with the named joints set.

        Args:
            names: joint names of ``positions``; names the URDF lacks are ignored.
            positions: (len(names),) rad for revolute/continuous, m for prismatic joints.
            base: configuration the unnamed joints take (default: the model's neutral one).

        Raises:
            KinematicsError: length mismatch or non-finite values.
        """
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(names),):
            raise KinematicsError(f"{len(names)} joint names but positions of shape {positions.shape}")
        if not np.isfinite(positions).all():
            raise KinematicsError(f"non-finite joint positions {dict(zip(names, positions.tolist()))}")
        q = (self.neutral if base is None else base).copy()
        for name, value in zip(names, positions):
            slot = self._joints.get(name)
            if slot is None:
                continue
            index, nq = slot
            if nq == 1:
                q[index] = value
            else:  # continuous joint: unit complex number
                q[index], q[index + 1] = np.cos(value), np.sin(value)
        return q

    def ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) m and rotation (3, 3), in the root link frame, at configuration ``q``."""
        self._pin.forwardKinematics(self.model, self.data, q)
        placement = self._pin.updateFramePlacement(self.model, self.data, self._ee_id)
        return placement.translation.copy(), placement.rotation.copy()

    def ee_path(
        self, names: Sequence[str], trajectory: np.ndarray, base: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """End-effector poses along a joint trajectory.

        Args:
            names: joint names of the trajectory's columns.
            trajectory: (T, len(names)) joint positions (rad / m).
            base: configuration for the URDF joints not in ``names`` (default: neutral).

        Returns:
            positions (T, 3) m and rotations (T, 3, 3), in the root link frame.
        """
        trajectory = np.asarray(trajectory, dtype=np.float64)
        if trajectory.ndim != 2 or trajectory.shape[1] != len(names):
            raise KinematicsError(f"trajectory of shape {trajectory.shape} for {len(names)} joints")
        positions = np.empty((len(trajectory), 3))
        rotations = np.empty((len(trajectory), 3, 3))
        for t, row in enumerate(trajectory):
            positions[t], rotations[t] = self.ee_pose(self.configuration(names, row, base))
        return positions, rotations
