"""`asyncvla-ros replay`: publish a bag's topics with their recorded timing, and /clock (runs the bag player node)."""

from __future__ import annotations

import argparse

from asyncvla_ros.bags.reader import INPUT_TOPICS


def parameters(opts) -> dict:
    """The player node's parameters from the command line."""
    topics = list(INPUT_TOPICS) if opts.inputs_only and not opts.topics else opts.topics
    params = {"bag": opts.bag, "rate": float(opts.rate), "start_offset_s": float(opts.start_offset), "loop": bool(opts.loop),
              "publish_clock": not opts.no_clock, "wait_for_subscribers_s": float(opts.wait_for_subscribers)}
    if topics:
        params["topics"] = list(topics)
    if opts.remap:
        params["remap"] = list(opts.remap)
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asyncvla-ros replay",
        description="Publish a recorded bag into the live graph with its recorded timing and /clock. Start "
                    "the semantic and action nodes with -p use_sim_time:=true to run them on the bag's time.")
    parser.add_argument("bag", help="bag directory")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1)")
    parser.add_argument("--start-offset", type=float, default=0.0, help="skip this many seconds of the bag's start")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--topics", nargs="+", default=[], metavar="TOPIC", help="recorded topics to play (default all)")
    parser.add_argument("--inputs-only", action="store_true",
                        help=f"play only the policy's inputs ({' '.join(INPUT_TOPICS)}), so live nodes compute the rest")
    parser.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO", help="rename topics, e.g. /action_chunk:=/recorded/action_chunk")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for every played topic to have a subscriber before starting")
    opts = parser.parse_args(argv)
    if opts.rate <= 0:
        parser.error(f"--rate must be > 0, got {opts.rate}")
    from rclpy.parameter import Parameter

    from asyncvla_ros.nodes.bag_player_node import BagPlayerNode
    from asyncvla_ros.nodes.runner import run

    overrides = [Parameter(k, value=v) for k, v in parameters(opts).items()]
    return run(lambda: BagPlayerNode(parameter_overrides=overrides), [])
