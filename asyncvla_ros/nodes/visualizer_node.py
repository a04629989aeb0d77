"""Visualizer node: every ActionChunk as RViz markers, end-effector paths and a ghost robot pose.

Subscribes to `action_chunk` and `joint_states` (the measured state fills joints a chunk does not
command). Publishes, in the robot description's base frame:
- `chunk_markers` (visualization_msgs/MarkerArray): SFM and final end-effector paths, one sphere per
  step coloured by the rater's confidence, regenerated steps boxed with a line from their SFM
  position, the ghost's step, and a text with chunk id, mode, semantic age and stage times
  (see asyncvla_ros.nodes.chunk_markers);
- `chunk_path` and `sfm_chunk_path` (nav_msgs/Path): end-effector poses of the final and SFM chunks,
  each stamped with the time its step is due;
- `ghost/joint_states` (sensor_msgs/JointState): the final chunk's pose at step `ghost_step`, for a
  second robot model (a robot_state_publisher with frame_prefix ghost/, where ROS is installed).
The geometry is computed by asyncvla_ros.visualization (Pinocchio forward kinematics of the URDF).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import JointState
from visualization_msgs.msg import MarkerArray

from asyncvla_ros.msg import ActionChunk
from asyncvla_ros.nodes.chunk_markers import (
    GHOST_NAMESPACE,
    MARKERS_TOPIC,
    PATH_TOPIC,
    SFM_PATH_TOPIC,
    chunk_arrays,
    info_text,
    marker_array,
    path,
)
from asyncvla_ros.nodes.conversions import MessageError
from asyncvla_ros.nodes.params import OK, WARN, Rejections, declare_config, diagnostics, steady_timer
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param
from asyncvla_ros.visualization.chunk_view import ChunkViewConfig, ChunkVisualizer
from asyncvla_ros.visualization.descriptions import DESCRIPTIONS, description
from asyncvla_ros.visualization.kinematics import KinematicsError


@dataclass
class VisualizerNodeConfig:
    description: str = param("so101", "robot description for forward kinematics", choices=tuple(sorted(DESCRIPTIONS)))
    ee_frame: str = param("", "URDF frame drawn as the end effector; empty = the description's")
    frame_id: str = param("", "frame of markers and paths; empty = the URDF's root link")
    frame_prefix: str = param("", "prefix of that frame (the TF prefix of a namespaced robot, e.g. r1/)")
    step_diameter_m: float = param(0.012, "diameter of a step marker, m", low=0.001, high=0.2)


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", VisualizerNodeConfig), ("", ChunkViewConfig))


class VisualizerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("visualizer", **kwargs)
        node_config = declare_config(self, VisualizerNodeConfig)
        config = declare_config(self, ChunkViewConfig)
        name, ee_frame, frame_id = node_config.description, node_config.ee_frame, node_config.frame_id
        self.step_diameter_m = node_config.step_diameter_m
        try:
            desc = description(name)
            self.visualizer = ChunkVisualizer(desc, config, ee_frame)
        except (KinematicsError, FileNotFoundError) as err:
            raise ValueError(f"description {name!r}: {err}") from err
        self.frame_id = node_config.frame_prefix + (frame_id or desc.base_frame)
        self.rejections = Rejections(self)
        self.chunks = 0
        self.measured: dict[str, float] = {}  # latest measured position per joint, rad / m
        self.build_ms: deque[float] = deque(maxlen=200)
        self.marker_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, 10)
        self.path_pub = self.create_publisher(Path, PATH_TOPIC, 10)
        self.sfm_path_pub = self.create_publisher(Path, SFM_PATH_TOPIC, 10)
        self.ghost_pub = self.create_publisher(JointState, f"{GHOST_NAMESPACE}/joint_states", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.create_subscription(ActionChunk, "action_chunk", self.on_chunk, 10)
        self.create_subscription(JointState, "joint_states", self.on_state, 10)
        steady_timer(self, 1.0, self.publish_diagnostics)
        self.get_logger().info(
            f"description {name} (end effector {self.visualizer.kinematics.ee_frame}), frame {self.frame_id}")

    def on_state(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self.rejections.reject(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
            return
        try:
            self.visualizer.set_measured_state(msg.name, msg.position)
        except KinematicsError as err:
            self.rejections.reject(f"joint state not usable: {err}")
            return
        self.measured = dict(zip(msg.name, msg.position))

    def on_chunk(self, msg: ActionChunk) -> None:
        start = time.perf_counter()
        try:
            arrays = chunk_arrays(msg)
            view = self.visualizer.view(**arrays)
        except (MessageError, KinematicsError) as err:
            self.rejections.reject(f"chunk {msg.chunk_id} not drawn: {err}")
            return
        stamp = msg.header.stamp
        self.marker_pub.publish(marker_array(view, self.frame_id, stamp, info_text(msg, view), self.step_diameter_m))
        self.path_pub.publish(path(view.final_positions, view.final_rotations, view.step_times_s, self.frame_id, stamp))
        self.sfm_path_pub.publish(path(view.sfm_positions, view.sfm_rotations, view.step_times_s, self.frame_id, stamp))
        ghost = JointState()
        ghost.header.stamp = stamp
        # URDF joints the chunk does not command stay where the arm is, so the ghost model is complete.
        extra = [n for n in self.visualizer.kinematics.joint_names if n not in view.ghost_joint_names and n in self.measured]
        ghost.name = list(view.ghost_joint_names) + extra
        ghost.position = [float(v) for v in view.ghost_positions] + [float(self.measured[n]) for n in extra]
        self.ghost_pub.publish(ghost)
        self.chunks += 1
        self.build_ms.append((time.perf_counter() - start) * 1e3)

    def publish_diagnostics(self) -> None:
        build = np.asarray(self.build_ms) if self.build_ms else np.array([np.nan])
        values = {"chunks_drawn": self.chunks, "rejected_messages": self.rejections.count,
                  "build_ms_p50": float(np.median(build)), "build_ms_max": float(build.max())}
        level, message = (WARN, "chunks rejected") if self.rejections.count else (OK, "ok")
        self.diag_pub.publish(diagnostics(self, time.time_ns(), "visualizer", level, message, values))


def main(args=None) -> None:
    run_and_exit(VisualizerNode, args)


if __name__ == "__main__":
    main()
