"""Bag recorder node: subscribes to the graph's topics and writes them into a rosbag2 bag (MCAP or sqlite3).

Subscriptions are raw (serialized CDR), so the bag holds exactly what travelled. Ctrl-C, SIGTERM or
`duration_s` close the bag, which is then complete; what the recorder wrote is never lost to a stop.
`asyncvla-ros record` runs this node from the command line.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.node import Node

from asyncvla_ros.bags.topics import select
from asyncvla_ros.bags.writer import STORAGES, BagWriter, BagWriterConfig
from asyncvla_ros.nodes.bag_qos import message_class, subscribe_qos
from asyncvla_ros.nodes.params import declare_config
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param


@dataclass
class BagRecorderNodeConfig:
    output: str = param("", "bag directory to create; empty = bags/asyncvla-<date>-<time>")
    storage: str = param("mcap", "rosbag2 storage plugin", choices=tuple(sorted(STORAGES)))
    topics: tuple[str, ...] = param((), "topics to record; empty = every topic of the graph")
    semantic_payload: bool = param(False, "also record the semantic features' tensor payload (MB per refresh for a real model)")
    duration_s: float = param(0.0, "stop and close the bag after this long, s; 0 = until Ctrl-C", low=0.0, high=1e6)


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", BagRecorderNodeConfig),)


class BagRecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("bag_recorder", **kwargs)
        c = declare_config(self, BagRecorderNodeConfig)
        output, storage, topics, payload, duration_s = c.output, c.storage, list(c.topics), c.semantic_payload, c.duration_s
        selected = select(topics)
        path = Path(output or f"bags/asyncvla-{time.strftime('%Y%m%d-%H%M%S')}")
        if not output:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = BagWriter(BagWriterConfig(path, storage, payload))
        self.subs = {}
        for topic, (msgtype, kind) in selected.items():
            self.writer.add_topic(topic, msgtype, kind)
            self.subs[topic] = self.create_subscription(message_class(msgtype), topic, lambda raw, t=topic: self.on_message(t, raw),
                                                        subscribe_qos(kind), raw=True)
        # DDS discovery of a new publisher can take seconds on a loaded machine, and what it publishes
        # before then is not recorded: say when each topic's first publisher is matched.
        self.matched: set[str] = set()
        self.create_timer(0.2, self.check_matches)
        self.started = time.monotonic()
        if duration_s > 0:
            # The Ctrl-C path (runner.run turns SIGINT into KeyboardInterrupt): one way to stop, one way to close.
            self.create_timer(duration_s, lambda: os.kill(os.getpid(), signal.SIGINT))
        self.create_timer(5.0, self.report)
        self.get_logger().info(f"recording {len(selected)} topics into {path} ({storage}"
                               f"{', semantic payload' if payload else ''})")

    def check_matches(self) -> None:
        for topic, sub in self.subs.items():
            if topic not in self.matched and sub.get_publisher_count() > 0:
                self.matched.add(topic)
                self.get_logger().info(f"{topic}: publisher matched")

    def on_message(self, topic: str, raw: bytes) -> None:
        self.writer.write(topic, raw, time.time_ns())

    def report(self) -> None:
        n = sum(self.writer.counts.values())
        self.get_logger().info(f"{n} messages, {self.writer.bytes_written / 1e6:.1f} MB in "
                               f"{time.monotonic() - self.started:.0f} s")

    def close(self) -> None:
        """Close the bag (called by runner.run before the context goes away)."""
        self.writer.close()
        counts = ", ".join(f"{t} {n}" for t, n in self.writer.counts.items() if n)
        self.get_logger().info(f"bag {self.writer.config.path} closed: {counts or 'no messages'}")


def main(args=None) -> None:
    run_and_exit(BagRecorderNode, args)


if __name__ == "__main__":
    main()
