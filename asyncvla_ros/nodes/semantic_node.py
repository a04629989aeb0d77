"""Semantic node: camera frames, instruction and joint state into the core's `SemanticLoop`, and each
semantic condition it encodes out as a SemanticFeatures message (stamped with the capture time of the
frames encoded). Inline transport puts the tensors in the message; in-process transport (co-located
with the action node) commits them to the shared store and sends only the metadata.

Encoding runs on a worker thread of its own, woken by new frames, never in an executor callback: a
slow encode then cannot delay the control tick of a co-located action node, and every process can
use a SingleThreadedExecutor. (rclpy's MultiThreadedExecutor, the usual way to get that separation,
cost ~45 % of a core in executor overhead alone for the 20 Hz action node on this 2-core machine.)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from asyncvla_ros.control.joint_space import JointCalibrationConfig, JointSpace, parse_camera_map
from asyncvla_ros.control.semantic_loop import SemanticLoop, SemanticLoopConfig
from asyncvla_ros.control.semantic_store import LatestSemantics
from asyncvla_ros.msg import RefreshRequest, SemanticFeatures
from asyncvla_ros.nodes.conversions import MessageError, from_time, joint_positions
from asyncvla_ros.nodes.images import image_to_rgb
from asyncvla_ros.nodes.params import OK, WARN, Rejections, declare_config, diagnostics, set_torch_threads, steady_timer
from asyncvla_ros.nodes.qos import FEATURES, LATCHED, SEMANTIC_HEARTBEAT_S
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.nodes.semantic_transport import to_message
from asyncvla_ros.parameters import param
from asyncvla_ros.policy.default import PolicySourceConfig

NOT_ENCODING_LOG_AFTER_S = 5.0  # a node that has not encoded for this long logs the reason (then every 5 s)
IDLE_WAKE_S = 0.1  # the worker looks again this often without new frames (stop requests, the rate cap)
MAX_REASON_CHARS = 200  # a refresh request's reason as logged and passed on in SemanticFeatures.trigger, characters


@dataclass
class SemanticNodeConfig:
    instruction: str = param("", "task instruction; the latched 'instruction' topic and `ros2 param set` replace it", read_only=False)
    joint_names: tuple[str, ...] = param((), "joints of the robot state, in the robot's order (read when the policy puts the state in its prompt)")
    camera_map: tuple[str, ...] = param((), "POLICY:=GRAPH pairs, for a policy trained with other camera names: the graph camera "
                                            "(camera_names) each policy camera reads, e.g. top:=front; unnamed ones read their own")


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", PolicySourceConfig), ("", SemanticNodeConfig), ("", SemanticLoopConfig), ("", JointCalibrationConfig))


class SemanticNode(Node):
    """Args: policy/store are injected when co-located with the action node (in-process transport)."""

    def __init__(self, policy=None, model_id: str = "", store: LatestSemantics | None = None, **kwargs) -> None:
        super().__init__("semantic", **kwargs)
        self.source = declare_config(self, PolicySourceConfig)
        self.config = declare_config(self, SemanticNodeConfig)
        loop_config = declare_config(self, SemanticLoopConfig)
        self.torch_threads = self.source.torch_threads
        self.inline = store is None
        if policy is None:
            from asyncvla_ros.policy.default import load_policy

            policy, model_id = load_policy(self.source.model_dir, self.source.device)
        self.policy, self.model_id, self.store = policy, model_id, store
        # The loop works in the policy's camera names; each reads the graph camera camera_map gives it.
        cameras = parse_camera_map(self.config.camera_map, policy.config.backbone.camera_names, loop_config.camera_names)
        loop_config = dataclasses.replace(loop_config, camera_names=tuple(cameras))
        calibration, joint_space = declare_config(self, JointCalibrationConfig), None
        if policy.config.backbone.state_in_prompt:
            if not self.config.joint_names:
                raise ValueError("this policy reads the robot state in its prompt: set joint_names")
            joint_space = JointSpace(policy.config.joints, self.config.joint_names, calibration)
        self.loop = SemanticLoop(policy, loop_config, joint_space=joint_space)
        if self.config.instruction:
            self.loop.set_instruction(self.config.instruction)
        self.rejections = Rejections(self)
        self.started = time.monotonic()

        for name, graph_name in cameras.items():
            self.create_subscription(Image, f"{graph_name}/image_raw", lambda msg, n=name: self.on_image(n, msg), 2)
        self.create_subscription(String, "instruction", self.on_instruction, LATCHED)
        if self.inline:  # co-located, the action node's refresh requests come in memory (policy_node)
            self.create_subscription(RefreshRequest, "semantic_refresh", self.on_refresh_request, 10)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        if self.loop.uses_state:
            self.create_subscription(JointState, "joint_states", self.on_state, 10)
        self.pub = self.create_publisher(SemanticFeatures, "semantic_features", FEATURES)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        steady_timer(self, 1.0, self.publish_diagnostics)
        steady_timer(self, SEMANTIC_HEARTBEAT_S, self.pub.assert_liveliness)
        self.new_frames = threading.Event()
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self.encode_loop, name="semantic-encode", daemon=True)
        self.worker.start()
        shown = [c if g == c else f"{c} <- {g}" for c, g in cameras.items()]
        self.get_logger().info(f"model {self.model_id}; cameras {shown}; "
                               f"transport {'inline' if self.inline else 'in_process'}")

    # -- inputs ------------------------------------------------------------------------------------

    def on_image(self, camera: str, msg: Image) -> None:
        try:
            self.loop.add_frame(camera, from_time(msg.header.stamp), image_to_rgb(msg))
        except MessageError as err:
            self.rejections.reject(f"image from {camera} rejected: {err}")
            return
        self.new_frames.set()

    def on_state(self, msg: JointState) -> None:
        try:
            self.loop.set_state(joint_positions(msg, self.config.joint_names), from_time(msg.header.stamp))
        except MessageError as err:
            self.rejections.reject(f"joint state rejected: {err}")

    def on_refresh_request(self, msg: RefreshRequest) -> None:
        # Whatever its fields, a request only asks for an encode; its reason goes into a log line and the
        # next SemanticFeatures.trigger, so it is cut to a line's length of printable text.
        reason = "".join(ch if ch.isprintable() else " " for ch in msg.reason[:MAX_REASON_CHARS + 1])
        self.request_refresh(reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS - 3] + "...")

    def request_refresh(self, reason: str) -> None:
        """Encode the next matched frame set now (the action node's confidence trigger)."""
        self.loop.request_refresh(reason)
        self.new_frames.set()

    def on_instruction(self, msg: String) -> None:
        self.apply_instruction(msg.data)

    def on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "instruction" and not self.apply_instruction(str(p.value)):
                return SetParametersResult(successful=False, reason="instruction refused (empty or too long for the policy's prompt)")
        return SetParametersResult(successful=True)

    def apply_instruction(self, text: str) -> bool:
        try:
            changed = self.loop.set_instruction(text)
        except ValueError as err:
            self.rejections.reject(f"instruction refused, {self.loop.instruction!r} stays: {err}")
            return False
        if changed:
            self.get_logger().info(f"instruction: {text.strip()!r}")
        return True

    # -- encoding ----------------------------------------------------------------------------------

    def encode_loop(self) -> None:
        while not self.stopping.is_set():
            if not self.new_frames.wait(timeout=IDLE_WAKE_S):
                continue
            # Frame ages and the rate cap by the node clock: wall time live, the bag's time when a bag is
            # replayed with use_sim_time.
            wait_s = self.loop.seconds_until_allowed(self.get_clock().now().nanoseconds)
            if wait_s > 0:
                self.stopping.wait(min(wait_s, IDLE_WAKE_S))
                continue  # new_frames stays set: look again
            self.new_frames.clear()
            try:
                item = self.loop.step(self.get_clock().now().nanoseconds)
            except Exception as err:  # a failing encode is reported, and the next frames are tried
                self.get_logger().error(f"encode failed: {err!r}", throttle_duration_sec=2.0)
                continue
            if item is None:
                continue
            if self.store is not None:
                self.store.commit(item)
            if item.trigger:
                self.get_logger().info(f"refresh {item.seq} triggered: {item.trigger}")
            self.pub.publish(to_message(item.condition, item.seq, self.model_id, item.encode_ms, inline=self.inline,
                                        state_stamp_ns=item.state_stamp_ns, frame_stamps_ns=item.frame_stamps_ns,
                                        trigger=item.trigger))

    def close(self) -> None:
        """Stop the encode worker (before the node and the rclpy context go away)."""
        self.stopping.set()
        self.worker.join(timeout=10.0)

    def publish_diagnostics(self) -> None:
        s = self.loop.stats()
        values = {"refresh_hz": s.refresh_hz, "encode_ms_p50": s.encode_ms_p50, "frames_dropped_stale": s.frames_dropped_stale,
                  "frames_received": s.frames_received, "images_rejected": self.rejections.count, "seq": s.seq,
                  "triggered_refreshes": s.triggered}
        level, message = (OK, "encoding") if s.encoding else (WARN, f"not encoding: {s.reason}")
        self.diag_pub.publish(diagnostics(self, time.time_ns(), "semantic", level, message, values))
        if level == WARN and time.monotonic() - self.started > NOT_ENCODING_LOG_AFTER_S:  # the log says why, not only /diagnostics
            self.get_logger().warning(f"{message} (frames received: {s.frames_received}, dropped as stale: {s.frames_dropped_stale})",
                                      throttle_duration_sec=NOT_ENCODING_LOG_AFTER_S)


def main(args=None) -> None:
    def make() -> SemanticNode:
        node = SemanticNode()
        set_torch_threads(node.torch_threads)
        return node

    run_and_exit(make, args)


if __name__ == "__main__":
    main()
