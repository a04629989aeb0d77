"""The recorder's storage side: serialized messages in, a rosbag2 directory (MCAP or sqlite3) out.

Messages arrive as the CDR bytes the middleware delivered (a raw subscription), so what is written is
bit for bit what travelled, header stamps included. Each connection is written with its message
definition from our typestore and the QoS it was published with, so `ros2 bag play` offers the same
QoS (the latched instruction stays latched). Semantic features are stored without their tensor
payload unless asked: the metadata (stamps, seq, shapes, encode time) is what debugging needs, and a
payload is megabytes per refresh for a real model.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from asyncvla_ros.bags.topics import SEMANTIC_FEATURES
from asyncvla_ros.bags.types import BagError, typestore

logger = logging.getLogger(__name__)

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9  # rosbag2 metadata version of Jazzy/Kilted (readable by Humble's rosbag2 too)

_INFINITE = QosTime(sec=2147483647, nsec=4294967295)  # rosbag2's "infinite" duration
_ZERO = QosTime(sec=0, nsec=0)


def qos_profile(kind: str) -> Qos:
    """The QoS a graph topic of this kind is published with (see nodes/qos.py), as rosbag2 metadata."""
    if kind == "default":
        return Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE, _INFINITE, _INFINITE,
                   QosLiveliness.AUTOMATIC, _INFINITE, False)
    if kind == "latched":
        return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, _INFINITE,
                   _INFINITE, QosLiveliness.AUTOMATIC, _INFINITE, False)
    if kind == "semantic":
        return Qos(QosHistory.KEEP_LAST, 2, QosReliability.RELIABLE, QosDurability.VOLATILE, _INFINITE, _INFINITE,
                   QosLiveliness.MANUAL_BY_TOPIC, QosTime(sec=0, nsec=100_000_000), False)
    raise ValueError(f"QoS kind {kind!r} unknown; valid kinds are ['default', 'latched', 'semantic']")


@dataclass
class BagWriterConfig:
    path: Path  # bag directory to create; must not exist yet
    storage: str = "mcap"  # mcap | sqlite3
    semantic_payload: bool = False  # keep SemanticFeatures tensor bytes (MB per refresh for a real model)

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser()
        if self.storage not in STORAGES:
            raise ValueError(f"BagWriterConfig.storage must be one of {sorted(STORAGES)}, got {self.storage!r}")
        if self.path.exists():
            raise ValueError(f"BagWriterConfig.path {self.path} exists: rosbag2 writes a new directory; "
                             "choose another path or remove it")
        if not self.path.parent.is_dir():
            raise ValueError(f"BagWriterConfig.path: parent directory {self.path.parent} does not exist")


def strip_semantic_payload(raw: bytes, store=None) -> bytes:
    """The same SemanticFeatures message with every TensorBlob.data emptied (names, dtypes, shapes kept)."""
    store = store or typestore()
    msg = store.deserialize_cdr(raw, SEMANTIC_FEATURES)
    empty = np.zeros(0, dtype=np.uint8)
    msg = dataclasses.replace(msg, tensors=[dataclasses.replace(t, data=empty) for t in msg.tensors])
    return bytes(store.serialize_cdr(msg, SEMANTIC_FEATURES))


class BagWriter:
    """Writes serialized messages of declared topics into one rosbag2 directory; thread-safe.

    Use as a context manager, or call `close()` in a `finally`: a closed bag is complete and readable
    whatever stopped the recording.
    """

    def __init__(self, config: BagWriterConfig) -> None:
        self.config = config
        self.store = typestore()
        self._lock = threading.Lock()
        self._writer = Writer(config.path, version=BAG_VERSION, storage_plugin=STORAGES[config.storage])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.bytes_written = 0
        self.closed = False

    def add_topic(self, topic: str, msgtype: str, qos_kind: str = "default") -> None:
        """Declare a topic before writing to it.

        Raises:
            BagError: a type the typestore does not know.
        """
        if msgtype not in self.store.fielddefs:
            raise BagError(f"topic {topic}: message type {msgtype!r} unknown to the bag typestore")
        with self._lock:
            # The type hash (RIHS01) is the one rosidl computes for the same definition (checked in the tests),
            # so a ROS 2 install matches the bag's types to its own.
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self.store, rihs01=self.store.hash_rihs01(msgtype),
                offered_qos_profiles=[qos_profile(qos_kind)])
            self.counts[topic] = 0

    def write(self, topic: str, raw: bytes, log_time_ns: int) -> None:
        """Append one serialized message; `log_time_ns` is the receive time (ns since the epoch)."""
        conn = self._connections.get(topic)
        if conn is None:
            raise BagError(f"topic {topic} was not declared: call add_topic() first")
        if conn.msgtype == SEMANTIC_FEATURES and not self.config.semantic_payload:
            raw = strip_semantic_payload(raw, self.store)
        with self._lock:
            if self.closed:
                return  # a late callback after close(): the bag is already complete
            self._writer.write(conn, int(log_time_ns), raw)
            self.counts[topic] += 1
            self.bytes_written += len(raw)

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._writer.close()
                logger.info("bag %s closed: %d messages", self.config.path, sum(self.counts.values()))

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
