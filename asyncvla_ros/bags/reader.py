"""Opening recorded bags and the replay schedule: which messages go out, under which topic, when.

Times: a message's bag time is its log (receive) time, ns since the epoch; replay publishes it
`(bag time - first played bag time) / rate` seconds of wall time after the start, and /clock carries
the bag time (rosbag2's convention), so nodes under use_sim_time see the recorded time line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader

from asyncvla_ros.bags.topics import GRAPH_TOPICS, absolute
from asyncvla_ros.bags.types import BagError, typestore
from asyncvla_ros.parameters import check_fields, param

# The recorded inputs of the policy: replaying only these drives live semantic and action nodes
# without the recorded outputs (chunks, commands) colliding with the ones they compute.
INPUT_TOPICS = tuple(t for t in GRAPH_TOPICS if t.endswith(("/image_raw", "/camera_info"))) + (
    "/joint_states", "/instruction", "/sim/world_state")


def open_bag(path) -> AnyReader:
    """An opened reader of the rosbag2 directory (or single .mcap/.db3 file's directory) at `path`.

    Raises:
        BagError: no such bag, or not a rosbag2 bag.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix in (".mcap", ".db3"):
        path = path.parent
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 bag (no metadata.yaml): give the bag's directory")
    reader = AnyReader([path], default_typestore=typestore())
    try:
        reader.open()
    except Exception as err:  # rosbags raises several types for damaged bags
        raise BagError(f"cannot read bag {path}: {err}") from err
    return reader


@dataclass
class PlayConfig:
    rate: float = param(1.0, "playback speed factor (2 = twice as fast)", low=0.01, high=100.0)
    start_offset_s: float = param(0.0, "skip this much of the bag's beginning, s", low=0.0, high=1e6)
    loop: bool = param(False, "start over at the end (bag time jumps back, as with `ros2 bag play --loop`)")
    topics: tuple[str, ...] = param((), "recorded topics to play; empty = all")
    remap: tuple[str, ...] = param((), "topic renamings FROM:=TO, e.g. /action_chunk:=/recorded/action_chunk")

    def __post_init__(self) -> None:
        check_fields(self)
        self.topics = tuple(absolute(t) for t in self.topics)
        self.renames = parse_remap(self.remap)  # recorded topic -> published topic


def parse_remap(items) -> dict[str, str]:
    """["/a:=/b", ...] -> {"/a": "/b"}.

    Raises:
        ValueError: an item without ':='.
    """
    out = {}
    for item in items:
        if ":=" not in item:
            raise ValueError(f"remapping {item!r} must read FROM:=TO, e.g. /action_chunk:=/recorded/action_chunk")
        src, dst = item.split(":=", 1)
        out[absolute(src)] = absolute(dst)
    return out


@dataclass
class PlayTopic:
    topic: str  # recorded name
    out_topic: str  # published name (after remapping)
    msgtype: str
    qos_kind: str  # "default" | "latched" | "semantic" (graph topics), else "default"


def plan(reader: AnyReader, config: PlayConfig) -> list[PlayTopic]:
    """The recorded topics to play, after selection and remapping.

    Raises:
        BagError: a selected or remapped topic that the bag does not hold (the message lists the bag's
            topics), or one of another type than the graph's topic it would be played on.
    """
    recorded = {}
    for conn in reader.connections:
        recorded.setdefault(conn.topic, conn.msgtype)
    for name in (*config.topics, *config.renames):
        if name not in recorded:
            raise BagError(f"topic {name} is not in the bag; it holds {sorted(recorded)}")
    chosen = config.topics or tuple(sorted(recorded))
    for t in chosen:  # a graph topic must carry the graph's type, or every subscriber would fail to take it
        out = config.renames.get(t, t)
        expected = GRAPH_TOPICS.get(out, (recorded[t], ""))[0]
        if recorded[t] != expected:
            raise BagError(f"topic {t} in the bag is {recorded[t]}, but the graph's {out} carries {expected}: "
                           "remap it (--remap) or leave it out (--topics)")
    return [PlayTopic(t, config.renames.get(t, t), recorded[t], GRAPH_TOPICS.get(t, ("", "default"))[1]) for t in chosen]


def messages(reader: AnyReader, topics: list[PlayTopic], start_offset_s: float = 0.0) -> Iterator[tuple[int, PlayTopic, bytes]]:
    """(bag time ns, topic, serialized message) in bag-time order, from `start_offset_s` after the bag's start.

    A latched topic's last message before the start is played first (stamped at the start), so a
    replay that skips the beginning still hands the nodes the instruction.
    """
    by_name = {t.topic: t for t in topics}
    conns = [c for c in reader.connections if c.topic in by_name]
    start = reader.start_time + int(start_offset_s * 1e9)
    latched = [c for c in conns if by_name[c.topic].qos_kind == "latched"]
    if start > reader.start_time and latched:
        last = {}
        for conn, _, raw in reader.messages(connections=latched, stop=start):
            last[conn.topic] = bytes(raw)
        for topic, raw in last.items():
            yield start, by_name[topic], raw
    for conn, stamp_ns, raw in reader.messages(connections=conns, start=start):
        yield stamp_ns, by_name[conn.topic], bytes(raw)
