"""A recorded run loaded for the re-run: camera frames, joint states, instruction, semantic refreshes,
and the action node's chunks, decoded from the bag with rosbags (no rclpy).

All stamps are ns since the epoch: `stamp_ns` is a message's header stamp (capture time), `log_ns`
the time the recorder received it. Everything is held in memory, which suits the seconds-to-minutes
bags that offline debugging uses (a 112 px camera at 10 Hz is ~0.4 MB/s).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from asyncvla_ros.bags.reader import open_bag
from asyncvla_ros.bags.topics import ACTION_CHUNK, IMAGE, JOINT_STATE, SEMANTIC_FEATURES
from asyncvla_ros.bags.types import BagError
from asyncvla_ros.imaging import raw_image_to_rgb



def stamp_ns(t) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def image_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a decoded sensor_msgs/Image, by the live nodes' rules (`raw_image_to_rgb`).

    Raises:
        BagError: another encoding, or data that doesn't match width/height/step.
    """
    try:
        return raw_image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
    except ValueError as err:
        raise BagError(str(err)) from err


@dataclass
class Frame:
    stamp_ns: int
    log_ns: int
    rgb: np.ndarray  # (H, W, 3) uint8


@dataclass
class StateSample:
    stamp_ns: int
    log_ns: int
    names: tuple[str, ...]
    positions: np.ndarray  # (n,) float64, in `names` order; rad (gripper in its driver's units)


@dataclass
class SemanticRecord:
    """Metadata of one recorded SemanticFeatures message."""

    seq: int
    stamp_ns: int  # capture stamp of the encoded frame set (its oldest frame)
    state_stamp_ns: int  # joint state in the prompt; 0 = none
    log_ns: int
    instruction: str
    model_id: str
    encode_ms: float
    frame_stamps_ns: tuple[int, ...] = ()  # per camera, in the policy's order; () in bags from before the field


@dataclass
class Recording:
    path: str
    start_ns: int  # first log time of the bag
    frames: dict[str, list[Frame]] = field(default_factory=dict)  # camera -> frames by stamp
    states: list[StateSample] = field(default_factory=list)
    instructions: list[tuple[int, str]] = field(default_factory=list)  # (log_ns, text)
    semantics: dict[int, SemanticRecord] = field(default_factory=dict)  # seq -> record
    chunks: list = field(default_factory=list)  # (log_ns, decoded ActionChunk) in log order
    # The action node's commands, and what the safety filter let through for them (stamped as the
    # command they answer), by stamp.
    commands: dict[int, StateSample] = field(default_factory=dict)
    safe_commands: dict[int, StateSample] = field(default_factory=dict)

    def state_positions(self, sample: StateSample, joint_names) -> np.ndarray:
        """`sample`'s positions in `joint_names` order.

        Raises:
            BagError: a joint the sample does not have.
        """
        index = {n: i for i, n in enumerate(sample.names)}
        missing = [n for n in joint_names if n not in index]
        if missing:
            raise BagError(f"joint state at {sample.stamp_ns} lacks joints {missing} (has {list(sample.names)})")
        return sample.positions[[index[n] for n in joint_names]]

    def index(self) -> None:
        """Build the look-ups `state_at`, `latest_state_stamped` and `latest_state` use (after loading, before the re-run)."""
        self.states.sort(key=lambda st: st.log_ns)
        self._by_stamp = {st.stamp_ns: st for st in self.states}
        self._log_times = [st.log_ns for st in self.states]
        self._stamped = sorted(self.states, key=lambda st: st.stamp_ns)
        self._stamps = [st.stamp_ns for st in self._stamped]

    def state_at(self, stamp: int) -> StateSample | None:
        """The joint state with exactly this header stamp, or None."""
        return self._by_stamp.get(stamp)

    def latest_state_stamped(self, stamp: int) -> StateSample | None:
        """The joint state with the newest header stamp at or before `stamp`, or None: what a node that
        planned from a state stamped `stamp` could have had, when the bag lacks that state itself."""
        i = bisect.bisect_right(self._stamps, stamp)
        return self._stamped[i - 1] if i else None

    def latest_state(self, t_ns: int) -> StateSample | None:
        """The newest joint state received at or before bag time `t_ns`."""
        i = bisect.bisect_right(self._log_times, t_ns)
        return self.states[i - 1] if i else None


def load(path, cameras, camera_topics: dict[str, str] | None = None) -> Recording:
    """Decode the parts of a bag the re-run needs.

    Args:
        path: bag directory.
        cameras: camera names of the policy, read from `/<name>/image_raw`.
        camera_topics: policy camera -> the graph camera whose `/<name>/image_raw` it reads (a
            camera_map); frames are kept under the policy's names.

    Raises:
        BagError: missing bag, or a bag without joint states or without a camera the policy needs.
    """
    reader = open_bag(path)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        source = {cam: (camera_topics or {}).get(cam, cam) for cam in cameras}
        by_topic = {f"/{graph}/image_raw": cam for cam, graph in source.items()}
        wanted = {topic: IMAGE for topic in by_topic}
        wanted.update({"/joint_states": JOINT_STATE})
        for topic, msgtype in wanted.items():
            if topic not in topics:
                raise BagError(f"bag {path} has no {topic}, which the re-run needs; it holds {sorted(topics)}")
            if topics[topic] != msgtype:
                raise BagError(f"bag {path}: {topic} is {topics[topic]}, expected {msgtype}")
        optional = {"/instruction": "std_msgs/msg/String", "/semantic_features": SEMANTIC_FEATURES, "/action_chunk": ACTION_CHUNK,
                    "/joint_command": JOINT_STATE, "/safe_joint_command": JOINT_STATE}
        wanted.update({t: m for t, m in optional.items() if topics.get(t) == m})
        rec = Recording(str(path), reader.start_time, frames={cam: [] for cam in cameras})
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, log_ns, msg in _deserialized(reader, conns, path):
            topic = conn.topic
            if topic.endswith("/image_raw"):
                rec.frames[by_topic[topic]].append(Frame(stamp_ns(msg.header.stamp), log_ns, image_rgb(msg)))
            elif topic in ("/joint_states", "/joint_command", "/safe_joint_command"):
                if len(msg.name) == len(msg.position):
                    sample = StateSample(stamp_ns(msg.header.stamp), log_ns, tuple(msg.name), np.asarray(msg.position, dtype=np.float64))
                    if topic == "/joint_states":
                        rec.states.append(sample)
                    else:
                        (rec.commands if topic == "/joint_command" else rec.safe_commands)[sample.stamp_ns] = sample
            elif topic == "/instruction":
                rec.instructions.append((log_ns, msg.data.strip()))
            elif topic == "/semantic_features":
                rec.semantics[int(msg.seq)] = SemanticRecord(
                    int(msg.seq), stamp_ns(msg.header.stamp), stamp_ns(msg.state_stamp), log_ns, msg.instruction,
                    msg.model_id, float(msg.encode_time_ms), tuple(stamp_ns(t) for t in getattr(msg, "frame_stamps", ())))
            else:
                rec.chunks.append((log_ns, msg))
    finally:
        reader.close()
    if not rec.states:
        raise BagError(f"bag {path} holds no valid joint states")
    for frames in rec.frames.values():
        frames.sort(key=lambda f: f.stamp_ns)
    rec.index()
    return rec


def _deserialized(reader, conns, path):
    """(connection, log time, message) in bag order; a bag that is cut short or holds a message that does
    not deserialize ends with a BagError naming where (rosbags raises its own error types)."""
    last_ns = None
    messages = reader.messages(connections=conns)
    while True:
        try:
            conn, log_ns, raw = next(messages)
        except StopIteration:
            return
        except Exception as err:
            where = "at its start" if last_ns is None else f"after bag time {last_ns}"
            raise BagError(f"bag {path} cannot be read {where}: {err}") from err
        try:
            msg = reader.deserialize(raw, conn.msgtype)
        except Exception as err:
            raise BagError(f"bag {path}: a {conn.topic} message at bag time {log_ns} does not deserialize as "
                           f"{conn.msgtype}: {err}") from err
        last_ns = log_ns
        yield conn, log_ns, msg
