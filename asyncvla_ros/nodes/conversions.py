"""Message <-> array conversions (rclpy message classes, no torch).

Stamps are nanoseconds since the epoch (int) on the core side and builtin_interfaces/Time on the wire.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint


class MessageError(ValueError):
    """A message the node refuses; the text says what is wrong with it."""


def to_time(stamp_ns: int) -> Time:
    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


def from_time(t: Time) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def joint_state(names, positions, stamp_ns: int, velocities=None) -> JointState:
    msg = JointState()
    msg.header.stamp = to_time(stamp_ns)
    msg.name = list(names)
    msg.position = [float(p) for p in positions]
    if velocities is not None:
        msg.velocity = [float(v) for v in velocities]
    return msg


def joint_positions(msg: JointState, joint_names) -> np.ndarray:
    """Positions of `joint_names`, in that order, from a JointState that may list joints in any order.

    Raises:
        MessageError: names/positions of different lengths, a joint named twice, a required joint missing,
            or NaN/inf.
    """
    if len(msg.name) != len(msg.position):
        raise MessageError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    if len(index) != len(msg.name):
        raise MessageError(f"JointState names a joint twice: {list(msg.name)}")
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise MessageError(f"JointState lacks joints {missing} (has {list(msg.name)})")
    values = np.array([msg.position[index[n]] for n in joint_names], dtype=np.float64)
    if not np.isfinite(values).all():
        raise MessageError(f"JointState has non-finite positions: {dict(zip(joint_names, values.tolist()))}")
    return values


def single_point_trajectory(names, positions, stamp_ns: int, time_from_start_s: float) -> JointTrajectory:
    """The same target as a one-point trajectory, for a ros2_control joint_trajectory_controller."""
    msg = JointTrajectory()
    msg.header.stamp = to_time(stamp_ns)
    msg.joint_names = list(names)
    sec = int(time_from_start_s)
    msg.points = [JointTrajectoryPoint(
        positions=[float(p) for p in positions],
        time_from_start=Duration(sec=sec, nanosec=int(round((time_from_start_s - sec) * 1e9))),
    )]
    return msg


def world_snapshot(msg):
    """The sim's pose in a SimWorldState message, as the renderer and the expert's mirror take it.

    Raises:
        MessageError: mocap arrays that are not whole poses (3 and 4 values per body).
    """
    from asyncvla_ros.sim.render import PoseSnapshot

    pos, quat = np.asarray(msg.mocap_pos, dtype=np.float64), np.asarray(msg.mocap_quat, dtype=np.float64)
    if pos.size % 3 or quat.size % 4:
        raise MessageError(f"world state with {pos.size} mocap positions and {quat.size} quaternion values "
                           "(3 and 4 per body)")
    return PoseSnapshot(float(msg.sim_time_s), np.asarray(msg.qpos, dtype=np.float64), pos.reshape(-1, 3), quat.reshape(-1, 4))
