"""The policy's joints and cameras against the robot's: names, order and units (no rclpy, no torch).

A policy sees joints in its dataset's order and units. This package's demonstrations and drivers use
radians; LeRobot's SO100 datasets hold degrees (`use_degrees`) or LeRobot's normalised motor range
(-100..100 over each joint's calibrated range, 0..100 for the gripper). The checkpoint records which
(`PolicyConfig.joints`, a `JointSpaceConfig`: names and units, written by `asyncvla-ros train`), and `JointSpace` maps the
robot's radians, in a node's `joint_names` order, onto the policy's values and back: per joint an affine
map, exact both ways. A mismatch it cannot resolve (a joint the robot lacks, a normalised range without
the calibrated span to map it onto, unknown units) is a ValueError when the node starts.
`parse_camera_map` does the same for camera names: a policy trained on cameras `top` and `wrist` reads
the graph's `front` and `wrist` with `camera_map: [top:=front]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.parameters import check_fields, param
from asyncvla_ros.policy.config import JointSpaceConfig

SUFFIXES = (".pos", ".position")  # LeRobot's feature names: shoulder_pan.pos


@dataclass
class JointCalibrationConfig:
    """Where a policy in a normalised range meets the robot (a node parameter, from the robot's params file)."""

    range_lower_rad: tuple[float, ...] = param((), "per joint (in joint_names order): the radians a normalised-range policy's "
                                                   "-100 (or gripper 0) stands for; empty = no normalised-range policy here")
    range_upper_rad: tuple[float, ...] = param((), "per joint: the radians its +100 (gripper 100) stands for")

    def __post_init__(self) -> None:
        self.range_lower_rad, self.range_upper_rad = tuple(map(float, self.range_lower_rad)), tuple(map(float, self.range_upper_rad))
        if len(self.range_lower_rad) != len(self.range_upper_rad):
            raise ValueError("range_lower_rad and range_upper_rad need one value per joint each")
        check_fields(self)


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class JointSpace:
    """robot (rad, robot order) <-> policy (its units, its order).

    Args:
        policy: the checkpoint's joint space.
        robot_names: the node's joint_names (what its joint states and commands carry).
        calibration: the calibrated span per robot joint, needed only for normalised-range units.

    Raises:
        ValueError: a policy joint the robot lacks, a count mismatch, or a normalised range without
            its calibrated span (each naming what to set).
    """

    def __init__(self, policy: JointSpaceConfig, robot_names, calibration: JointCalibrationConfig | None = None) -> None:
        robot = [base_name(n) for n in robot_names]
        names = [base_name(n) for n in policy.names] if policy.names else robot
        missing = [n for n in names if n not in robot]
        if missing or len(names) != len(robot):
            raise ValueError(f"the policy's joints {names} are not the robot's joint_names {list(robot_names)} "
                             f"(missing {missing}): set joint_names to the policy's joints")
        self.order = np.array([robot.index(n) for n in names])  # policy slot i <- robot joint order[i]
        units = policy.units or ("rad",) * len(names)
        scale, offset = np.ones(len(names)), np.zeros(len(names))
        for i, (name, unit) in enumerate(zip(names, units)):
            if unit == "deg":
                scale[i] = 180.0 / math.pi
            elif unit.startswith("range_"):
                c = calibration
                if c is None or len(c.range_lower_rad) != len(robot):
                    raise ValueError(f"the policy's {name} is in LeRobot's normalised range ({unit}): set range_lower_rad "
                                     f"and range_upper_rad (the calibrated span of each of the {len(robot)} joints, rad) "
                                     "in the robot's params file")
                lo, hi = c.range_lower_rad[self.order[i]], c.range_upper_rad[self.order[i]]
                if not (math.isfinite(lo) and math.isfinite(hi)) or hi == lo:
                    # lo > hi is a joint whose LeRobot drive_mode flips its sign (asyncvla-ros so100-ranges)
                    raise ValueError(f"{name}: range_lower_rad {lo} and range_upper_rad {hi} must be finite and differ")
                low_value, span = (-100.0, 200.0) if unit == "range_m100_100" else (0.0, 100.0)
                scale[i] = span / (hi - lo)
                offset[i] = low_value - lo * scale[i]
        self.scale, self.offset, self.units = scale, offset, tuple(units)
        self.identity = bool((self.order == np.arange(len(names))).all() and (scale == 1).all() and (offset == 0).all())

    def to_policy(self, rad: np.ndarray) -> np.ndarray:
        """(..., J) robot radians in robot order -> the policy's values in its order."""
        rad = np.asarray(rad, dtype=np.float64)
        return rad if self.identity else rad[..., self.order] * self.scale + self.offset

    def to_robot(self, values: np.ndarray) -> np.ndarray:
        """(..., J) the policy's values in its order -> robot radians in robot order."""
        values = np.asarray(values, dtype=np.float64)
        if self.identity:
            return values
        out = np.empty_like(values)
        out[..., self.order] = (values - self.offset) / self.scale
        return out


def camera_pair(pair, option: str = "camera_map", left: str = "POLICY_CAMERA") -> tuple[str, str]:
    """`LEFT:=GRAPH` -> (LEFT, GRAPH); ValueError naming `option` and the form to write."""
    name, sep, graph_name = str(pair).partition(":=")
    if not sep or not name or not graph_name:
        raise ValueError(f"{option} entry {pair!r}: write {left}:=GRAPH_CAMERA, e.g. top:=front")
    return name, graph_name


def parse_camera_map(pairs, policy_cameras, graph_cameras=None) -> dict[str, str]:
    """policy camera -> the graph camera it reads, from `POLICY:=GRAPH` pairs (unmapped cameras read their
    own name). The mapped names must be exactly `graph_cameras`, when given.

    Raises:
        ValueError: a malformed pair, a policy camera that does not exist, or graph cameras that do not match
            (naming the camera_map that would).
    """
    mapping = {}
    for pair in pairs:
        policy_name, graph_name = camera_pair(pair)
        if policy_name not in policy_cameras:
            raise ValueError(f"camera_map entry {pair!r}: the policy has no camera {policy_name!r}; it has {list(policy_cameras)}")
        mapping[policy_name] = graph_name
    full = {c: mapping.get(c, c) for c in policy_cameras}
    if graph_cameras is not None and sorted(full.values()) != sorted(graph_cameras):
        hint = ", ".join(f"{p}:={g}" for p, g in zip(policy_cameras, graph_cameras) if p != g)
        raise ValueError(f"camera_names {list(graph_cameras)} differ from the policy's cameras {list(policy_cameras)}"
                         f"{' (mapped: ' + str(list(full.values())) + ')' if mapping else ''}: set camera_map "
                         f"[{hint or 'POLICY:=GRAPH'}] (each policy camera := the graph camera it reads)")
    return full
