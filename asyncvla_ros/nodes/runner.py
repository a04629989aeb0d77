"""The main() every node executable shares."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run(make_node: Callable[[], Node], args=None) -> None:
    """Initialise rclpy, build the node, spin until Ctrl-C or shutdown, then close it.

    A node that cannot be built from its parameters (a ValueError naming the parameter) exits with
    status 1 and that message, not a traceback.
    """
    rclpy.init(args=args)
    try:
        node = make_node()
    except ValueError as err:
        print(f"{sys.argv[0]}: {err}", file=sys.stderr)
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
        rclpy.try_shutdown()
