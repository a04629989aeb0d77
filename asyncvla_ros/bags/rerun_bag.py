"""The re-run's bag: every recorded message, plus the recomputed chunks and commands beside them.

Recomputed chunks go to `/rerun/action_chunk` (asyncvla_ros/msg/ActionChunk, same fields as the
node's) and the re-run's ensembled targets to `/rerun/joint_command` (sensor_msgs/JointState), each
logged at the time the recorded chunk of the same tick was logged (or at the tick's bag time), so a
player or viewer shows recorded and recomputed side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asyncvla_ros.bags.reader import open_bag
from asyncvla_ros.bags.rerun import RerunResult, TickRecord
from asyncvla_ros.bags.topics import ACTION_CHUNK, GRAPH_TOPICS, JOINT_STATE
from asyncvla_ros.bags.writer import BagWriter, BagWriterConfig

RERUN_CHUNK_TOPIC = "/rerun/action_chunk"
RERUN_COMMAND_TOPIC = "/rerun/joint_command"


def _time(store, ns: int):
    return store.types["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def _header(store, ns: int):
    return store.types["std_msgs/msg/Header"](stamp=_time(store, ns), frame_id="")


def chunk_message(store, t: TickRecord, result: RerunResult, step_period_s: float):
    """The recomputed chunk of tick `t` as a rosbags ActionChunk (the action node's field conventions)."""
    c = t.chunk
    horizon, action_dim = c.actions.shape
    return store.types[ACTION_CHUNK](
        header=_header(store, t.state_stamp_ns), semantic_stamp=_time(store, t.semantic_stamp_ns),
        semantic_age_s=float(t.semantic_age_s), semantic_seq=int(t.semantic_seq), chunk_id=int(t.chunk_id),
        tick=int(t.tick), seed=int(c.seed), hold_ticks=int(t.hold_ticks), chunk_mode=result.chunk_mode,
        plan_delay_ticks=int(result.plan_delay_ticks), context=np.asarray(c.context, bool), command_stamp=_time(store, t.now_ns),
        history_answered=np.asarray(t.history_answered, bool), step_period_s=float(step_period_s), joint_names=list(result.joint_names),
        horizon=int(horizon), action_dim=int(action_dim),
        actions=np.asarray(c.actions, np.float32).ravel(), sfm_actions=np.asarray(c.sfm_actions, np.float32).ravel(),
        confidence=np.asarray(c.confidence, np.float32), regenerated=np.asarray(c.regenerated, bool),
        sfm_time_ms=float(c.sfm_ms), rater_time_ms=float(c.rater_ms), afm_time_ms=float(c.afm_ms),
        total_time_ms=float(c.total_ms), mode=c.mode)


def command_message(store, t: TickRecord, joint_names):
    return store.types[JOINT_STATE](header=_header(store, t.now_ns), name=list(joint_names),
                                    position=np.asarray(t.command, np.float64), velocity=np.zeros(0),
                                    effort=np.zeros(0))


def write_rerun_bag(result: RerunResult, out: Path, storage: str = "mcap") -> dict[str, int]:
    """Write `out`: the recorded bag's messages, then the re-run's. Returns message counts per topic."""
    reader = open_bag(result.bag)
    writer = BagWriter(BagWriterConfig(out, storage, semantic_payload=True))  # copy what was recorded, as recorded
    try:
        for conn in reader.connections:
            writer.add_topic(conn.topic, conn.msgtype, GRAPH_TOPICS.get(conn.topic, ("", "default"))[1])
        for conn, log_ns, raw in reader.messages():
            writer.write(conn.topic, bytes(raw), log_ns)
        writer.add_topic(RERUN_CHUNK_TOPIC, ACTION_CHUNK)
        writer.add_topic(RERUN_COMMAND_TOPIC, JOINT_STATE)
        store = writer.store
        period = 1.0 / result.config.control_rate_hz if result.config else 0.05
        for t in result.ticks:
            log_ns = t.recorded_log_ns or t.now_ns
            if t.recorded is not None:
                period = float(t.recorded.step_period_s)
            if t.chunk is not None:
                msg = chunk_message(store, t, result, period)
                writer.write(RERUN_CHUNK_TOPIC, bytes(store.serialize_cdr(msg, ACTION_CHUNK)), log_ns)
            if t.command is not None and t.now_ns and not t.skipped:
                msg = command_message(store, t, result.joint_names)
                writer.write(RERUN_COMMAND_TOPIC, bytes(store.serialize_cdr(msg, JOINT_STATE)), log_ns)
    finally:
        writer.close()
        reader.close()
    return dict(writer.counts)
