"""`asyncvla-ros`: the package's command-line entry point.

Each subcommand lives in its own module and is imported only when used, so `asyncvla-ros --help` works
on a robot computer without torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module with a `main(argv) -> int`, one-line help)
COMMANDS = {
    "launch": ("asyncvla_ros.launcher", "start the node graph (sim by default) and print live figures"),
    "train": ("asyncvla_ros.training.cli", "train a policy on a LeRobotDataset (both stages)"),
    "eval": ("asyncvla_ros.evaluation.cli", "closed-loop success rates on held-out sim seeds, with plots"),
    "offline-eval": ("asyncvla_ros.evaluation.offline_cli", "chunk errors on a recorded dataset, and which inputs the policy uses"),
    "video": ("asyncvla_ros.evaluation.video", "held-out sim episodes as a GIF/MP4 with the planned chunks drawn over the camera"),
    "bench-policy": ("asyncvla_ros.bench.policy_latency", "latency of encode() and act() on each plan path, as JSON"),
    "bench-train": ("asyncvla_ros.bench.train_throughput", "trainer samples/s on synthetic data (tiny or 3B shapes), as JSON"),
    "bench-graph": ("asyncvla_ros.bench.graph", "run the sim graph and print control/semantic timing as JSON"),
    "bench-kill": ("asyncvla_ros.bench.kill", "kill -9 each node of the sim graph in turn; what reached the driver, time to hold, as JSON"),
    "soak": ("asyncvla_ros.bench.soak", "run the sim graph for a long time: deadlines, memory, fds, threads, message loss as JSON"),
    "demos": ("asyncvla_ros.data.demos", "record scripted sim demonstrations into a local LeRobotDataset"),
    "record": ("asyncvla_ros.nodes.record_cli", "record the graph's topics into a rosbag2 bag (MCAP or sqlite3)"),
    "replay": ("asyncvla_ros.nodes.replay_cli", "publish a bag into the live graph with its timing and /clock"),
    "so100-ranges": ("asyncvla_ros.drivers.so100.calibration", "LeRobot's normalised SO100 ranges in the driver's radians, from its calibration file"),
    "bag-to-dataset": ("asyncvla_ros.bags.to_dataset", "demonstrations recorded through the graph (bags) -> a LeRobotDataset"),
    "rerun": ("asyncvla_ros.bags.rerun_cli", "re-run the policy on a bag's observations offline; bag + report"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="asyncvla-ros", description="AsyncVLA policies on ROS 2 arms.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(argv[1:]) or 0)
    except Exception as err:
        if not is_input_error(err) or os.environ.get("ASYNCVLA_ROS_TRACEBACK"):
            raise
        print(f"asyncvla-ros {args.command}: error: {err}\n(ASYNCVLA_ROS_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 1


def is_input_error(err: Exception) -> bool:
    """Errors that explain bad input or a missing file (config checks, datasets, checkpoints, bags, devices):
    the message says what to fix, so the command prints it without a traceback. Anything else is a bug
    and keeps its traceback."""
    return isinstance(err, (ValueError, OSError)) or type(err).__module__.startswith("asyncvla_ros.")


if __name__ == "__main__":
    raise SystemExit(main())
