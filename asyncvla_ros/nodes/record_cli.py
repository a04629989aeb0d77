"""`asyncvla-ros record`: record the graph's topics into a rosbag2 bag (runs the bag recorder node; the bag
format itself is asyncvla_ros.bags, which knows nothing of rclpy)."""

from __future__ import annotations

import argparse

from asyncvla_ros.bags.topics import GRAPH_TOPICS
from asyncvla_ros.bags.writer import STORAGES


def parameters(opts) -> dict:
    """The recorder node's parameters from the command line."""
    params = {"storage": opts.storage, "semantic_payload": bool(opts.semantic_payload), "duration_s": float(opts.duration)}
    if opts.output:
        params["output"] = opts.output
    if opts.topics:
        params["topics"] = list(opts.topics)
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asyncvla-ros record",
        description="Record the node graph's topics into a rosbag2 bag (MCAP by default) with the message "
                    "definitions embedded; Ctrl-C closes a complete bag. With ROS 2 installed, "
                    "`ros2 bag record` works equally.")
    parser.add_argument("output", nargs="?", default="", help="bag directory to create (default bags/asyncvla-<date>-<time>)")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="mcap", help="storage plugin (default mcap)")
    parser.add_argument("--topics", nargs="+", default=[], metavar="TOPIC",
                        help=f"topics to record (default all): {' '.join(sorted(GRAPH_TOPICS))}")
    parser.add_argument("--semantic-payload", action="store_true",
                        help="also record the semantic features' tensors (MB per refresh for a real model)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds; 0 = until Ctrl-C")
    opts = parser.parse_args(argv)
    if opts.duration < 0:
        parser.error(f"--duration must be >= 0, got {opts.duration}")
    from rclpy.parameter import Parameter

    from asyncvla_ros.nodes.bag_recorder_node import BagRecorderNode
    from asyncvla_ros.nodes.runner import run

    overrides = [Parameter(k, value=v) for k, v in parameters(opts).items()]
    return run(lambda: BagRecorderNode(parameter_overrides=overrides), [])
