"""The fuzz harness: the nodes under test in this process on one executor thread (each subscription's
callbacks counted), the probe's publishers, and what the tests share. See conftest.py for the fixture."""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter, defaultdict

import numpy as np
import pytest
import yaml

from ...ros_support import REPO

PARAMS = REPO / "config" / "sim.yaml"
SAFETY = yaml.safe_load(PARAMS.read_text())["safety_filter"]["ros__parameters"]
JOINTS = tuple(SAFETY["joint_names"])
LOWER, UPPER, STEP = (np.asarray(SAFETY[k], dtype=float) for k in ("position_lower_rad", "position_upper_rad", "max_step_rad"))
TIMEOUT_S = 20.0  # for one message to be handled: generous, the machine may be busy
CASES: dict[str, Counter] = defaultdict(Counter)  # message type -> defect kind -> cases run


class Case(tuple):
    """(message, defect), shown in hypothesis' reports by its defect and a short prefix of the message."""

    def __new__(cls, msg, defect: str):
        return super().__new__(cls, (msg, defect))

    def __repr__(self) -> str:
        text = repr(self[0])
        return f"Case({self[1]!r}, {text[:600]}{'...' if len(text) > 600 else ''})"


class Harness:
    """The nodes under test on one executor thread, each subscription's callbacks counted."""

    def __init__(self, nodes) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.subscription import Subscription

        self.nodes = {n.get_name(): n for n in nodes}
        self.executor = SingleThreadedExecutor()
        self.handled: Counter = Counter()  # (node, topic as subscribed) -> callbacks run
        self.subscribers: dict[str, list[tuple[str, str]]] = defaultdict(list)  # resolved topic -> keys
        self.errors: list[str] = []
        for node in nodes:
            self.executor.add_node(node)
            for sub in node.subscriptions:
                key = (node.get_name(), sub.topic_name)
                self.subscribers[sub.topic_name].append(key)
                sub.callback = self._counted(sub.callback, key, sub._callback_type is Subscription.CallbackType.WithMessageInfo)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _counted(self, inner, key, with_info: bool):
        def count(*args):
            try:
                inner(*args)
            finally:
                self.handled[key] += 1

        if with_info:
            return lambda msg, info: count(msg, info)
        return lambda msg: count(msg)

    def _spin(self) -> None:
        while self.running:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # in a node process this would end the node
                self.errors.append(traceback.format_exc())

    def deliver(self, publisher, msg) -> None:
        """Publish `msg` (a message or its serialized bytes) and wait until every subscription on the
        topic has handled it."""
        keys = self.subscribers[publisher.topic_name]
        assert keys, f"nobody subscribes {publisher.topic_name}"
        before = {k: self.handled[k] for k in keys}
        publisher.publish(msg)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not self.errors:
            if all(self.handled[k] > before[k] for k in keys):
                return
            time.sleep(0.002)
        assert not self.errors, "a node would have died:\n" + "\n".join(self.errors)
        late = [k for k in keys if self.handled[k] == before[k]]
        raise AssertionError(f"not handled within {TIMEOUT_S} s by {late}")

    def close(self) -> None:
        self.running = False
        self.thread.join(10)
        for node in self.nodes.values():
            if hasattr(node, "close"):
                node.close()
            node.destroy_node()


class Graph(dict):
    """What the tests use (a dict), shown briefly in hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<graph of {sorted(self['harness'].nodes)}>"


def node(graph, name: str):
    nodes = graph["harness"].nodes
    if name not in nodes:
        pytest.skip(f"the {name} node could not be built here")
    return nodes[name]


def stamp_now():
    from asyncvla_ros.nodes.conversions import to_time

    return to_time(time.time_ns())




def rejected(n) -> int:
    """What a node has rejected so far: its `rejections`, or the safety filter's refusals and state problems."""
    if n.get_name() == "safety_filter":
        return sum(n.filter.counts[k] for k in ("dimension", "unknown_joint", "nan", "implausible_state")) + n.filter.refused
    return n.rejections.count



def rejections_from(graph, name: str, publisher: str, msg) -> int:
    """How many rejections node `name` counted for `msg`, delivered by the probe's `publisher`."""
    n = node(graph, name)
    before = rejected(n)
    graph["harness"].deliver(graph["pub"][publisher], msg)
    return rejected(n) - before
