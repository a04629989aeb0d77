"""Semantic node: encodes the newest synchronised camera frames and the instruction, back to back.

Every encode produces a SemanticFeatures message stamped with the capture time of the frames it
encoded. Inline transport puts the tensors in the message; in-process transport (co-located with
the action node) commits them to the shared store and sends only the metadata.

Encoding runs on a worker thread of its own, woken by new frames, never in an executor callback: a
slow encode then cannot delay the control tick of a co-located action node, and every process can
use a SingleThreadedExecutor. (rclpy's MultiThreadedExecutor, the usual way to get that separation,
cost ~45 % of a core in executor overhead alone for the 20 Hz action node on this 2-core machine.)
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from asyncvla_ros.control.frame_sync import FrameSyncConfig, FrameSynchronizer
from asyncvla_ros.control.semantic_store import LatestSemantics, SemanticItem
from asyncvla_ros.msg import SemanticFeatures
from asyncvla_ros.nodes.conversions import MessageError, from_time, joint_positions
from asyncvla_ros.imaging import resize_rgb
from asyncvla_ros.nodes.images import image_to_rgb
from asyncvla_ros.nodes.runner import run
from asyncvla_ros.nodes.semantic_transport import to_message
from asyncvla_ros.nodes.params import OK, WARN, Rejections, declare, diagnostics, set_torch_threads, steady_timer
from asyncvla_ros.nodes.qos import FEATURES, LATCHED, SEMANTIC_HEARTBEAT_S


NOT_ENCODING_LOG_AFTER_S = 5.0  # a node that has not encoded for this long logs the reason (then every 5 s)


class SemanticNode(Node):
    """Args: policy/store are injected when co-located with the action node (in-process transport)."""

    def __init__(self, policy=None, model_id: str = "", store: LatestSemantics | None = None, **kwargs) -> None:
        super().__init__("semantic", **kwargs)
        model_dir = declare(self, "model_dir", "", "policy checkpoint or Qwen2.5-VL directory; empty = embedded default")
        device = declare(self, "device", "cpu", "torch device, e.g. cpu or cuda:0")
        cameras = declare(self, "camera_names", ["front", "wrist"], "cameras in the policy's order; topics <name>/image_raw")
        self.instruction = declare(self, "instruction", "", "task instruction; the latched 'instruction' topic overrides it", read_only=False)
        max_skew = declare(self, "max_skew_s", 0.05, "largest capture-time spread of one frame set, s", low=0.001, high=5.0)
        max_age = declare(self, "max_frame_age_s", 0.5, "frames older than this are dropped, never encoded, s", low=0.01, high=30.0)
        max_rate = declare(self, "max_rate_hz", 0.0, "cap on encodes per second; 0 = back to back", low=0.0, high=1000.0)
        self.torch_threads = declare(self, "torch_threads", 0, "CPU threads for torch in this process; 0 = torch's default", low=0, high=256)
        self.min_interval_s = 1.0 / max_rate if max_rate > 0 else 0.0
        self.last_encode_start = 0.0
        self.joint_names = tuple(declare(self, "joint_names", [""], "joints of the robot state, in the policy's state order (read when the policy puts the state in its prompt)"))
        self.inline = store is None
        if policy is None:
            from asyncvla_ros.policy.default import load_policy

            policy, model_id = load_policy(model_dir, device)
        self.policy, self.model_id, self.store = policy, model_id, store
        names = tuple(self.policy.config.backbone.camera_names)
        if tuple(cameras) != names:
            raise ValueError(f"camera_names {list(cameras)} differ from the policy's cameras {list(names)}")
        bb = self.policy.backbone.config
        self.image_size = (bb.image_height_px, bb.image_width_px)
        self.sync = FrameSynchronizer(FrameSyncConfig(camera_names=names, max_skew_s=max_skew, max_age_s=max_age))
        self.lock = threading.Lock()  # frame buffers: written by image callbacks, read by the encode loop
        self.seq = 0
        self.rejections = Rejections(self)
        self.encode_ms: list[float] = []
        self.encode_stamps: list[float] = []
        self.started = time.monotonic()
        self.last_frame_mono: float | None = None  # when the last camera frame arrived
        self.skip_reason = "no frames yet"  # why the last attempt encoded nothing

        for name in names:
            self.create_subscription(Image, f"{name}/image_raw", lambda msg, n=name: self.on_image(n, msg), 2)
        self.create_subscription(String, "instruction", self.on_instruction, LATCHED)
        self.state: tuple[np.ndarray, int] | None = None  # (positions, capture stamp ns)
        self.uses_state = self.policy.config.backbone.state_in_prompt
        if self.uses_state:
            if not all(self.joint_names):
                raise ValueError("this policy reads the robot state in its prompt: set joint_names")
            self.create_subscription(JointState, "joint_states", self.on_state, 10)
        self.pub = self.create_publisher(SemanticFeatures, "semantic_features", FEATURES)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        steady_timer(self, 1.0, self.publish_diagnostics)
        steady_timer(self, SEMANTIC_HEARTBEAT_S, self.pub.assert_liveliness)
        self.new_frames = threading.Event()
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self.encode_loop, name="semantic-encode", daemon=True)
        self.worker.start()
        self.get_logger().info(f"model {self.model_id}; cameras {list(names)}; transport {'inline' if self.inline else 'in_process'}")

    def on_image(self, camera: str, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except MessageError as err:
            self.rejections.reject(f"image from {camera} rejected: {err}")
            return
        with self.lock:
            self.sync.add(camera, from_time(msg.header.stamp), rgb)
            self.last_frame_mono = time.monotonic()
        self.new_frames.set()

    def on_state(self, msg: JointState) -> None:
        try:
            self.state = (joint_positions(msg, self.joint_names), from_time(msg.header.stamp))
        except MessageError as err:
            self.rejections.reject(f"joint state rejected: {err}")

    def on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if not text:
            self.get_logger().error("empty instruction ignored")
            return
        if text != self.instruction:
            self.get_logger().info(f"instruction: {text!r}")
        self.instruction = text

    def encode_loop(self) -> None:
        while not self.stopping.is_set():
            if not self.new_frames.wait(timeout=0.1):
                continue
            wait_s = self.min_interval_s - (time.monotonic() - self.last_encode_start)
            if wait_s > 0:
                self.stopping.wait(wait_s)
            self.new_frames.clear()
            try:
                self.encode_once()
            except Exception as err:  # a failing encode is reported, and the next frames are tried
                self.get_logger().error(f"encode failed: {err!r}", throttle_duration_sec=2.0)

    def encode_once(self) -> None:
        if not self.instruction:
            return
        with self.lock:
            # Frame ages by the node clock: wall time live, the bag's time when a bag is replayed
            # with use_sim_time.
            frames = self.sync.take(self.get_clock().now().nanoseconds)
            if frames is None:
                self.skip_reason = self.sync.stats.last_reason
                return
        state, state_stamp = self.state if (self.uses_state and self.state is not None) else (None, 0)
        if self.uses_state and state is None:
            self.skip_reason = "waiting for a joint state: this policy reads it in its prompt"
            self.get_logger().warning(self.skip_reason, throttle_duration_sec=2.0)
            return
        images = [resize_rgb(f, self.image_size) for f in frames.frames]
        self.last_encode_start = time.monotonic()
        t0 = time.perf_counter()
        cond = self.policy.encode(images, self.instruction, state=state, stamp_ns=frames.stamp_ns)
        encode_ms = (time.perf_counter() - t0) * 1e3
        self.seq += 1
        if self.store is not None:
            self.store.commit(SemanticItem(cond, self.seq, frames.stamp_ns, self.instruction, encode_ms))
        self.pub.publish(to_message(cond, self.seq, self.model_id, encode_ms, inline=self.inline, state_stamp_ns=state_stamp,
                                    frame_stamps_ns=frames.stamps_ns))
        self.encode_ms.append(encode_ms)
        self.encode_stamps.append(time.monotonic())

    def not_encoding_reason(self, now: float) -> str:
        """Why no encode happened lately (called with the frame lock held)."""
        if not self.instruction:
            return "no instruction"
        if self.last_frame_mono is None:
            return "no camera frame received yet"
        if now - self.last_frame_mono > 1.0:
            return f"no camera frame for {now - self.last_frame_mono:.1f} s"
        return self.skip_reason

    def close(self) -> None:
        """Stop the encode worker (before the node and the rclpy context go away)."""
        self.stopping.set()
        self.worker.join(timeout=10.0)

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        recent = [t for t in self.encode_stamps if now - t < 5.0]
        self.encode_stamps = recent
        ms = self.encode_ms[-len(recent):] if recent else []
        self.encode_ms = ms
        with self.lock:
            stats = self.sync.stats
            values = {"refresh_hz": len(recent) / 5.0, "encode_ms_p50": float(np.median(ms)) if ms else float("nan"),
                      "frames_dropped_stale": stats.dropped_stale, "frames_received": stats.received,
                      "images_rejected": self.rejections.count, "seq": self.seq}
            reason = self.not_encoding_reason(now)
        level, message = (OK, "encoding") if recent else (WARN, f"not encoding: {reason}")
        self.diag_pub.publish(diagnostics(self, time.time_ns(), "semantic", level, message, values))
        if level == WARN and now - self.started > NOT_ENCODING_LOG_AFTER_S:  # the log says why, not only /diagnostics
            self.get_logger().warning(f"{message} (frames received: {stats.received}, dropped as stale: {stats.dropped_stale})",
                                      throttle_duration_sec=NOT_ENCODING_LOG_AFTER_S)


def main(args=None) -> None:
    def make() -> SemanticNode:
        node = SemanticNode()
        set_torch_threads(node.torch_threads)
        return node

    raise SystemExit(run(make, args))

if __name__ == "__main__":
    main()
