"""Action node: at the control rate, plan a chunk from the latest semantics and publish the next command.

Commands go out as JointState targets on `joint_command` (to the safety filter), and what the filter
lets through comes back on `safe_joint_command` into the executed-action history; every planned chunk
goes out as an ActionChunk on `action_chunk` with its confidences, regenerated steps and stage times.
When semantics or joint state are too old, or the semantic publisher is gone, it holds and says why.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import JointState

from asyncvla_ros.control.action_loop import ActionLoop, ActionLoopConfig
from asyncvla_ros.control.joint_space import JointCalibrationConfig, JointSpace
from asyncvla_ros.control.refresh_trigger import RefreshTrigger, RefreshTriggerConfig
from asyncvla_ros.control.semantic_store import LatestSemantics, SemanticItem
from asyncvla_ros.msg import ActionChunk, RefreshRequest, SemanticFeatures
from asyncvla_ros.nodes.conversions import MessageError, from_time, joint_positions, joint_state, to_time
from asyncvla_ros.nodes.params import OK, WARN, Rejections, declare_config, diagnostics, set_torch_threads, steady_timer
from asyncvla_ros.nodes.qos import FEATURES
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.nodes.semantic_transport import from_message
from asyncvla_ros.parameters import param
from asyncvla_ros.policy.backbone import InputError
from asyncvla_ros.policy.config import PLAN_PATHS
from asyncvla_ros.policy.default import PolicySourceConfig


@dataclass
class ActionNodeConfig:
    joint_names: tuple[str, ...] = param((), "joints the policy commands, in its action order")
    plan_path: str = param("auto", "how a chunk is computed: eager (the reference), static (buffers allocated once), graphs "
                           "(static, replayed from CUDA graphs; CUDA only); auto = graphs on CUDA, else eager", choices=PLAN_PATHS)


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", PolicySourceConfig), ("", ActionNodeConfig), ("", ActionLoopConfig), ("", RefreshTriggerConfig),
           ("", JointCalibrationConfig))


class ActionNode(Node):
    """Args: policy/store are injected when co-located with the semantic node."""

    def __init__(self, policy=None, model_id: str = "", store: LatestSemantics | None = None, **kwargs) -> None:
        super().__init__("action", **kwargs)
        source = declare_config(self, PolicySourceConfig)
        node_config = declare_config(self, ActionNodeConfig)
        self.joint_names = node_config.joint_names
        config = declare_config(self, ActionLoopConfig)
        self.trigger = RefreshTrigger(declare_config(self, RefreshTriggerConfig))
        self.on_refresh_request = None  # co-located: the semantic node's request_refresh, called in memory
        self.torch_threads = source.torch_threads
        if policy is None:
            from asyncvla_ros.policy.default import load_policy

            policy, model_id = load_policy(source.model_dir, source.device)
        policy.set_plan_path(node_config.plan_path)
        self.policy, self.model_id = policy, model_id
        e = policy.config.expert
        if len(self.joint_names) != e.action_dim or not all(self.joint_names):
            raise ValueError(f"joint_names {list(self.joint_names)} must name the policy's {e.action_dim} action dimensions")
        # The policy's joints and units against the robot's radians (a ValueError naming what to set).
        joint_space = JointSpace(policy.config.joints, self.joint_names, declare_config(self, JointCalibrationConfig))
        self.loop = ActionLoop(policy, config, joint_space)
        self.store = store or LatestSemantics()
        self.colocated = store is not None
        self.state: np.ndarray | None = None
        self.state_stamp_ns = 0
        self.semantics_alive = True
        self.rejections = Rejections(self)
        self.tick_walls: deque[float] = deque(maxlen=200)
        self.plan_ms: deque[float] = deque(maxlen=200)
        # Semantic hand-over costs: DDS time (publish -> receive, from the samples' timestamps),
        # decode time (inline payload -> tensors, checked against the policy), payload size.
        self.transport_ms: deque[float] = deque(maxlen=100)
        self.decode_ms: deque[float] = deque(maxlen=100)
        self.payload_bytes = 0
        self.last_result = None
        self.tick_ns = 0  # node clock of the latest tick (the stamp of its command)

        # The semantic process's liveliness, when it is another process. Co-located, its heartbeat timer
        # shares this executor: a late heartbeat there says only that this process's own tick ran long (a
        # loaded CI machine lost it for >0.1 s and the node held on "publisher gone"); a stuck encode worker
        # shows as feature age, which max_semantic_age_s holds on either way.
        events = None if self.colocated else SubscriptionEventCallbacks(liveliness=self.on_liveliness)
        self.create_subscription(SemanticFeatures, "semantic_features", self.on_features, FEATURES, event_callbacks=events)
        self.create_subscription(JointState, "joint_states", self.on_state, 10)
        # What the safety filter let through, stamped as our command: it replaces the command in the history.
        self.create_subscription(JointState, "safe_joint_command", self.on_safe_command, 10)
        self.cmd_pub = self.create_publisher(JointState, "joint_command", 10)
        self.chunk_pub = self.create_publisher(ActionChunk, "action_chunk", 10)
        self.refresh_pub = self.create_publisher(RefreshRequest, "semantic_refresh", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        # Every callback here is short (the tick plans one chunk; decoding features is a copy), so one
        # thread serves them all; the slow semantic work runs on the semantic node's own worker thread.
        self.create_timer(config.period_s, self.on_tick)
        steady_timer(self, 1.0, self.publish_diagnostics)
        units = "" if joint_space.identity else f" (the policy's: {list(joint_space.units)}, its order)"
        self.get_logger().info(f"model {model_id}; {config.control_rate_hz} Hz; mode {config.mode}; joints {list(self.joint_names)}{units}")

    # -- inputs ------------------------------------------------------------------------------------

    def on_liveliness(self, event) -> None:
        alive = event.alive_count > 0
        if alive != self.semantics_alive:
            self.get_logger().warning(f"semantic features publisher {'back' if alive else 'gone'}")
        self.semantics_alive = alive

    def on_features(self, msg: SemanticFeatures, info) -> None:
        self.transport_ms.append((info["received_timestamp"] - info["source_timestamp"]) * 1e-6)
        if msg.model_id != self.model_id:
            self.rejections.reject(f"semantic features from model {msg.model_id!r}, this node runs {self.model_id!r}: ignored")
            return
        self.semantics_alive = True
        if msg.transport == SemanticFeatures.TRANSPORT_IN_PROCESS and self.colocated:
            return  # the co-located semantic node committed the tensors to the shared store itself
        try:
            t0 = time.perf_counter()
            cond = from_message(msg, self.policy.device)
            self.policy.check_condition(cond)
            self.decode_ms.append((time.perf_counter() - t0) * 1e3)
            self.payload_bytes = sum(len(blob.data) for blob in msg.tensors)
        except (MessageError, InputError) as err:
            self.rejections.reject(f"semantic features seq {msg.seq} rejected: {err}")
            return
        self.store.commit(SemanticItem(cond, int(msg.seq), from_time(msg.header.stamp), msg.instruction, msg.encode_time_ms))

    def _positions(self, msg: JointState, what: str) -> np.ndarray | None:
        """`msg`'s positions in the policy's joint order, or None (rejected and counted)."""
        try:
            return joint_positions(msg, self.joint_names)
        except MessageError as err:
            self.rejections.reject(f"{what} rejected: {err}")
            return None

    def on_state(self, msg: JointState) -> None:
        positions = self._positions(msg, "joint state")
        if positions is not None:
            self.state, self.state_stamp_ns = positions, from_time(msg.header.stamp)

    def on_safe_command(self, msg: JointState) -> None:
        positions = self._positions(msg, "safe joint command")
        if positions is not None:
            self.loop.executed(from_time(msg.header.stamp), positions)

    # -- control -----------------------------------------------------------------------------------

    def on_tick(self) -> None:
        # The node clock: wall time live, the bag's time under use_sim_time when a bag is replayed.
        now = self.tick_ns = self.get_clock().now().nanoseconds
        self.tick_walls.append(time.monotonic())
        result = self.loop.tick(now, self.store.latest(), self.state, self.state_stamp_ns, self.semantics_alive)
        self.last_result = result
        if result.holding:
            self.get_logger().warning(f"holding: {result.reason}", throttle_duration_sec=1.0)
        if result.command is not None:
            self.cmd_pub.publish(joint_state(self.joint_names, result.command, now))
        if result.chunk is not None:
            self.plan_ms.append(result.plan_ms)
            self.chunk_pub.publish(self.chunk_message(result))
            fired = self.trigger.observe(now, result.chunk.confidence)
            if fired is not None:
                self.request_refresh(fired, result.chunk_id)

    def request_refresh(self, fired, chunk_id: int) -> None:
        """A fired confidence trigger: to the co-located semantic node in memory, and on the topic (to a
        semantic node in another process, and to recorders)."""
        if self.on_refresh_request is not None:
            self.on_refresh_request(fired.reason)
        msg = RefreshRequest(chunk_id=int(chunk_id), confidence=fired.confidence, recent_level=fired.recent, reason=fired.reason)
        msg.header.stamp = to_time(fired.stamp_ns)
        self.refresh_pub.publish(msg)

    def chunk_message(self, result) -> ActionChunk:
        chunk = result.chunk
        msg = ActionChunk()
        msg.header.stamp = to_time(self.state_stamp_ns)
        msg.semantic_stamp = to_time(result.semantic_stamp_ns)
        msg.semantic_age_s = float((self.state_stamp_ns - result.semantic_stamp_ns) * 1e-9)
        msg.semantic_seq = int(result.semantic_seq)
        msg.chunk_id = int(result.chunk_id)
        msg.tick = int(result.tick)
        msg.seed = int(chunk.seed)
        msg.hold_ticks = int(self.loop.hold_ticks)
        msg.chunk_mode = self.loop.config.chunk_mode
        msg.plan_delay_ticks = int(self.loop.config.plan_delay_ticks)
        msg.context = [bool(c) for c in chunk.context]
        msg.command_stamp = to_time(self.tick_ns)
        msg.history_answered = [bool(a) for a in result.history_answered]
        msg.step_period_s = float(self.loop.config.period_s)
        msg.joint_names = list(self.joint_names)
        msg.horizon, msg.action_dim = (int(n) for n in chunk.actions.shape)
        msg.actions = chunk.actions.astype(np.float32).ravel().tolist()
        msg.sfm_actions = chunk.sfm_actions.astype(np.float32).ravel().tolist()
        msg.confidence = chunk.confidence.astype(np.float32).tolist()
        msg.regenerated = [bool(r) for r in chunk.regenerated]
        msg.sfm_time_ms, msg.rater_time_ms, msg.afm_time_ms = float(chunk.sfm_ms), float(chunk.rater_ms), float(chunk.afm_ms)
        msg.total_time_ms = float(result.plan_ms)
        msg.mode = chunk.mode
        return msg

    def publish_diagnostics(self) -> None:
        walls = np.diff(np.asarray(self.tick_walls)) if len(self.tick_walls) > 2 else np.array([np.nan])
        r = self.last_result
        values = {
            "rate_hz": float(1.0 / np.median(walls)) if np.isfinite(walls).all() else float("nan"),
            "period_p99_ms": float(np.percentile(walls, 99) * 1e3),
            "plan_ms_p50": _p(self.plan_ms, 50),
            "semantic_age_s": float(r.semantic_age_s) if r else float("nan"),
            "state_age_s": float(r.state_age_s) if r else float("nan"),
            "chunks": self.loop.chunk_id,
            "semantic_transport_ms_p50": _p(self.transport_ms, 50),
            "semantic_transport_ms_p99": _p(self.transport_ms, 99),
            "semantic_decode_ms_p50": _p(self.decode_ms, 50),
            "semantic_payload_bytes": self.payload_bytes,
            "rejected_messages": self.rejections.count,
            "refresh_requests": self.trigger.fired,
        }
        holding = r is not None and r.holding
        message = f"holding: {r.reason}" if holding else "acting"
        self.diag_pub.publish(diagnostics(self, time.time_ns(), "action", WARN if holding else OK, message, values))


def _p(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main(args=None) -> None:
    def make() -> ActionNode:
        node = ActionNode()
        set_torch_threads(node.torch_threads)
        return node

    run_and_exit(make, args)

if __name__ == "__main__":
    main()
