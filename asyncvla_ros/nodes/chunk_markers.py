"""ActionChunk -> arrays, and a ChunkView -> RViz messages (MarkerArray, nav_msgs/Path).

Message classes only, no node: the visualizer node calls these once per chunk. What is drawn, all in
the robot description's base frame (``frame_id``):

- ``sfm_path`` (LINE_STRIP, grey): the end-effector path of the SFM chunk, before the rater and AFM.
- ``final_path`` (LINE_STRIP, white): the end-effector path of the final chunk, the one executed.
- ``step_confidence`` (one SPHERE per step, id = step): the final chunk's end effector at each step,
  coloured by the rater's confidence (red 0, yellow at the threshold, green 1).
- ``regenerated`` (one translucent magenta CUBE per regenerated step, id = step) around the step,
  and ``afm_change`` (LINE_LIST, magenta): from where SFM put the step to where AFM put it.
- ``ghost_step`` (a larger hollow-looking SPHERE): the step the ghost robot shows.
- ``info`` (TEXT_VIEW_FACING above the chunk's first step): chunk id, mode, semantic age, number of
  regenerated steps and stage times.
A DELETEALL marker comes first, so markers of a longer previous chunk never linger.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseStamped
from nav_msgs.msg import Path
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from asyncvla_ros.nodes.conversions import MessageError, from_time, to_time
from asyncvla_ros.visualization.chunk_view import ChunkView, rotation_to_quaternion

# Topics of the visualizer node (config/asyncvla.rviz subscribes to the same names).
MARKERS_TOPIC = "chunk_markers"
PATH_TOPIC = "chunk_path"
SFM_PATH_TOPIC = "sfm_chunk_path"
GHOST_NAMESPACE = "ghost"  # ghost/joint_states; its robot_state_publisher runs in this namespace with frame_prefix ghost/

SFM_RGBA = (0.6, 0.6, 0.6, 0.8)
FINAL_RGBA = (1.0, 1.0, 1.0, 0.9)
REGENERATED_RGBA = (0.9, 0.1, 0.9, 0.35)
AFM_CHANGE_RGBA = (0.9, 0.1, 0.9, 0.9)
GHOST_RGBA = (0.3, 0.6, 1.0, 0.5)
INFO_RGBA = (1.0, 1.0, 1.0, 1.0)


MAX_DRAWN_STEPS = 1000  # no policy plans chunks this long (the paper's are 10-50 steps)


def chunk_arrays(msg) -> dict:
    """The arrays of an ActionChunk, reshaped and checked.

    Returns:
        dict with joint_names (tuple), actions (L, D), sfm_actions (L, D) or (0, D), confidence (L,) or (0,),
        regenerated (L,) or (0,), step_period_s.

    Raises:
        MessageError: sizes disagree with horizon/action_dim/joint_names, or a horizon beyond MAX_DRAWN_STEPS.
    """
    horizon, dim = int(msg.horizon), int(msg.action_dim)
    if horizon < 1 or dim < 1:
        raise MessageError(f"ActionChunk {msg.chunk_id}: horizon {horizon} and action_dim {dim} must be >= 1")
    if horizon > MAX_DRAWN_STEPS:  # forward kinematics per step on the visualizer's only thread
        raise MessageError(f"ActionChunk {msg.chunk_id}: horizon {horizon} is beyond the {MAX_DRAWN_STEPS} steps drawn")
    if len(msg.joint_names) != dim:
        raise MessageError(f"ActionChunk {msg.chunk_id}: {len(msg.joint_names)} joint names for action_dim {dim}")
    if len(msg.actions) != horizon * dim:
        raise MessageError(f"ActionChunk {msg.chunk_id}: {len(msg.actions)} actions, expected horizon*action_dim = {horizon * dim}")
    if len(msg.sfm_actions) not in (0, horizon * dim):
        raise MessageError(f"ActionChunk {msg.chunk_id}: {len(msg.sfm_actions)} sfm_actions, expected 0 or {horizon * dim}")
    for field in ("confidence", "regenerated"):
        if len(getattr(msg, field)) not in (0, horizon):
            raise MessageError(f"ActionChunk {msg.chunk_id}: {len(getattr(msg, field))} {field} values for {horizon} steps")
    if not np.isfinite(msg.step_period_s) or msg.step_period_s <= 0:
        raise MessageError(f"ActionChunk {msg.chunk_id}: step_period_s must be > 0, got {msg.step_period_s}")
    return dict(
        joint_names=tuple(msg.joint_names),
        actions=np.asarray(msg.actions, dtype=np.float64).reshape(horizon, dim),  # step-major
        sfm_actions=np.asarray(msg.sfm_actions, dtype=np.float64).reshape(-1, dim),
        confidence=np.asarray(msg.confidence, dtype=np.float64),
        regenerated=np.asarray(msg.regenerated, dtype=bool),
        step_period_s=float(msg.step_period_s),
    )


def _rgba(values) -> ColorRGBA:
    r, g, b, a = (float(v) for v in values)
    return ColorRGBA(r=r, g=g, b=b, a=a)


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def _marker(ns: str, marker_id: int, kind: int, frame_id: str, stamp: Time, scale, rgba) -> Marker:
    m = Marker()
    m.header.frame_id = frame_id
    m.header.stamp = stamp
    m.ns, m.id, m.type, m.action = ns, marker_id, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = (float(s) for s in scale)
    m.color = _rgba(rgba)
    return m


def _at(m: Marker, position) -> Marker:
    m.pose.position = _point(position)
    return m


def info_text(msg, view: ChunkView) -> str:
    """The text shown above the chunk: what generated it, from how old semantics, and how fast."""
    return (f"chunk {msg.chunk_id} ({msg.mode or 'unknown mode'}): semantics {msg.semantic_age_s:.2f} s old "
            f"(seq {msg.semantic_seq}), {int(view.regenerated.sum())}/{view.horizon} steps regenerated\n"
            f"SFM {msg.sfm_time_ms:.1f} ms, rater {msg.rater_time_ms:.1f} ms, AFM {msg.afm_time_ms:.1f} ms, "
            f"total {msg.total_time_ms:.1f} ms")


def marker_array(view: ChunkView, frame_id: str, stamp: Time, text: str = "", step_diameter_m: float = 0.012) -> MarkerArray:
    """The chunk's markers (see the module docstring), stamped with the chunk's stamp.

    Args:
        step_diameter_m: diameter of a step sphere, m; lines are a quarter of it wide.
    """
    d = float(step_diameter_m)
    clear = Marker(action=Marker.DELETEALL)
    clear.header.frame_id, clear.header.stamp = frame_id, stamp
    markers = [clear]
    for ns, positions, rgba in (("sfm_path", view.sfm_positions, SFM_RGBA), ("final_path", view.final_positions, FINAL_RGBA)):
        line = _marker(ns, 0, Marker.LINE_STRIP, frame_id, stamp, (d / 4, 0, 0), rgba)
        line.points = [_point(p) for p in positions]
        markers.append(line)
    for step, (position, rgb) in enumerate(zip(view.final_positions, view.rgb)):
        markers.append(_at(_marker("step_confidence", step, Marker.SPHERE, frame_id, stamp, (d, d, d), (*rgb, 1.0)), position))
    regenerated = np.flatnonzero(view.regenerated)
    for step in regenerated:
        box = _marker("regenerated", int(step), Marker.CUBE, frame_id, stamp, (2 * d, 2 * d, 2 * d), REGENERATED_RGBA)
        markers.append(_at(box, view.final_positions[step]))
    if len(regenerated):
        change = _marker("afm_change", 0, Marker.LINE_LIST, frame_id, stamp, (d / 4, 0, 0), AFM_CHANGE_RGBA)
        for step in regenerated:
            change.points += [_point(view.sfm_positions[step]), _point(view.final_positions[step])]
        markers.append(change)
    ghost = _marker("ghost_step", 0, Marker.SPHERE, frame_id, stamp, (2.5 * d,) * 3, GHOST_RGBA)
    markers.append(_at(ghost, view.final_positions[view.ghost_step]))
    if text:
        label = _marker("info", 0, Marker.TEXT_VIEW_FACING, frame_id, stamp, (0, 0, 2 * d), INFO_RGBA)
        label.text = text
        markers.append(_at(label, view.final_positions[0] + np.array([0.0, 0.0, 6 * d])))
    return MarkerArray(markers=markers)


def path(positions: np.ndarray, rotations: np.ndarray, step_times_s: np.ndarray, frame_id: str, stamp: Time) -> Path:
    """nav_msgs/Path of end-effector poses; each pose stamped with the time its step is due."""
    msg = Path()
    msg.header.frame_id, msg.header.stamp = frame_id, stamp
    start_ns = from_time(stamp)
    for position, rot, t in zip(positions, rotations, step_times_s):
        pose = PoseStamped()
        pose.header.frame_id = frame_id
        pose.header.stamp = to_time(start_ns + int(round(t * 1e9)))
        q = rotation_to_quaternion(rot)
        pose.pose = Pose(position=_point(position))
        pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z, pose.pose.orientation.w = (float(v) for v in q)
        msg.poses.append(pose)
    return msg
