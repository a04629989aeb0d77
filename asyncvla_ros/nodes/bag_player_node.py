"""Bag player node: publishes a recorded bag's topics with their recorded timing, and /clock.

Nodes started with `use_sim_time:=true` then run on the bag's time line (their timers, frame ages and
staleness checks follow /clock), so the semantic and action nodes act on the recorded cameras and
joint states as they did on the robot. Messages go out serialized, exactly as recorded, with the
QoS the graph's own publishers use (the instruction latched, the semantic features with their
liveliness heartbeat); a message that does not deserialize as its recorded type is logged and not
published. Stops by itself at the end of the bag unless `loop` is set, with exit status 1 when the
replay failed or skipped messages.
`asyncvla-ros replay` runs this node from the command line.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from asyncvla_ros.bags.reader import PlayConfig, messages, open_bag, plan
from asyncvla_ros.nodes.bag_qos import message_class, publish_qos
from asyncvla_ros.nodes.conversions import to_time
from asyncvla_ros.nodes.params import declare_config
from asyncvla_ros.nodes.qos import SEMANTIC_HEARTBEAT_S
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param


@dataclass
class BagPlayerNodeConfig:
    bag: str = param("", "bag directory to play")
    publish_clock: bool = param(True, "publish the bag time on /clock (for use_sim_time)")
    clock_rate_hz: float = param(100.0, "/clock messages per second of wall time, Hz", low=1.0, high=10000.0)
    wait_for_subscribers_s: float = param(0.0, "before playing, wait up to this long for every topic to have a subscriber, s",
                                          low=0.0, high=600.0)


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", BagPlayerNodeConfig), ("", PlayConfig))


class BagPlayerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("bag_player", **kwargs)
        node_config = declare_config(self, BagPlayerNodeConfig)
        self.config = declare_config(self, PlayConfig)
        bag = node_config.bag
        self.publish_clock = node_config.publish_clock
        self.clock_period_s = 1.0 / node_config.clock_rate_hz
        self.wait_for_subscribers_s = node_config.wait_for_subscribers_s
        if not bag:
            raise ValueError("parameter bag: give the bag directory to play")
        self.reader = open_bag(bag)
        self.topics = plan(self.reader, self.config)
        self.pubs = {t.topic: self.create_publisher(message_class(t.msgtype), t.out_topic, publish_qos(t.qos_kind))
                     for t in self.topics}
        semantic = [self.pubs[t.topic] for t in self.topics if t.qos_kind == "semantic"]
        if semantic:
            self.create_timer(SEMANTIC_HEARTBEAT_S, lambda: [p.assert_liveliness() for p in semantic])
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        self.published = 0
        self.skipped = 0  # messages that do not deserialize as their recorded type: never published
        self.exit_status = 0  # 1 after a replay that failed or skipped messages (nodes/runner.py returns it)
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self.play, name="bag-player", daemon=True)
        # Started by the first spin, not here: a bag that ends at once would otherwise interrupt the node's
        # own construction, and runner.run would never see its exit status.
        self._start_timer = self.create_timer(0.0, self._start_playing)
        names = ", ".join(t.topic if t.topic == t.out_topic else f"{t.topic} -> {t.out_topic}" for t in self.topics)
        self.get_logger().info(f"playing {bag} at x{self.config.rate}: {names}")

    def _start_playing(self) -> None:
        self.destroy_timer(self._start_timer)
        self.worker.start()

    def play(self) -> None:
        try:
            self._wait_for_subscribers()
            while not self.stopping.is_set():
                self._play_once()
                if not self.config.loop:
                    break
            if not self.stopping.is_set():
                if self.skipped:
                    self.exit_status = 1
                    self.get_logger().error(f"end of bag: {self.published} messages published, {self.skipped} not "
                                            "(they do not deserialize as their recorded types)")
                else:
                    self.get_logger().info(f"end of bag: {self.published} messages published")
                os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C path of runner.run: one way to stop
        except Exception as err:  # reported, and the process stops instead of hanging silently
            self.exit_status = 1
            self.get_logger().error(f"replay failed after {self.published} messages: {err}")
            os.kill(os.getpid(), signal.SIGINT)

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + self.wait_for_subscribers_s
        while time.monotonic() < deadline and not self.stopping.is_set():
            if all(p.get_subscription_count() > 0 for p in self.pubs.values()):
                return
            time.sleep(0.05)

    def _play_once(self) -> None:
        rate = self.config.rate
        wall0 = time.monotonic()
        bag0 = None
        next_clock = wall0
        self.clock_ns = 0  # within one pass the published clock never goes back
        for stamp_ns, topic, raw in messages(self.reader, self.topics, self.config.start_offset_s):
            bag0 = stamp_ns if bag0 is None else bag0
            due = wall0 + (stamp_ns - bag0) * 1e-9 / rate
            while True:  # sleep until the message is due, publishing /clock on the way
                now = time.monotonic()
                if self.clock_pub is not None and now >= next_clock:
                    self.tick_clock(bag0 + int((now - wall0) * rate * 1e9))
                    next_clock = now + self.clock_period_s
                if now >= due or self.stopping.is_set():
                    break
                wait = due - now if self.clock_pub is None else min(due, next_clock) - now
                self.stopping.wait(max(wait, 0.0))
            if self.stopping.is_set():
                return
            if not self.deserializes(topic, stamp_ns, raw):
                continue
            if self.clock_pub is not None:
                self.tick_clock(stamp_ns)  # never behind the message it precedes
            self.pubs[topic.topic].publish(raw)
            self.published += 1

    def deserializes(self, topic, stamp_ns: int, raw: bytes) -> bool:
        """Whether `raw` is a message of the topic's type: bytes that are not would make every subscriber's
        take fail (a node process dies of that), so they are counted and logged, never published."""
        try:
            self.reader.deserialize(raw, topic.msgtype)
            return True
        except Exception as err:  # rosbags raises its own error types
            self.skipped += 1
            self.get_logger().error(f"{topic.topic} message at bag time {stamp_ns} does not deserialize as {topic.msgtype}, "
                                    f"not published: {err}", throttle_duration_sec=1.0)
            return False

    def tick_clock(self, bag_ns: int) -> None:
        """Publish the bag time on /clock, held at its last value when a late wake-up would move it back."""
        self.clock_ns = max(self.clock_ns, bag_ns)
        self.clock_pub.publish(Clock(clock=to_time(self.clock_ns)))

    def close(self) -> None:
        """Stop the playing thread (before the node and the rclpy context go away)."""
        self.stopping.set()
        if self.worker.ident is not None:  # started
            self.worker.join(timeout=5.0)


def main(args=None) -> None:
    run_and_exit(BagPlayerNode, args)


if __name__ == "__main__":
    main()
