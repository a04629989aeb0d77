"""The main() every node executable shares.

rclpy's own SIGINT handler shuts the context down at once, while timers, worker threads and publishers
may still be running; they then fail with "context is invalid" and the node dies with a traceback.
Here the context stays valid until the node is closed: SIGINT and SIGTERM become KeyboardInterrupt in
the main thread, spinning stops, the node stops its own threads (`close()`), and only then is rclpy
shut down.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(make_nodes: Callable[[], Node | list[Node]], args=None, executor: Executor | None = None) -> int:
    """Initialise rclpy, build the node(s), spin until Ctrl-C/SIGTERM, close them, shut down.

    A node that cannot be built from its parameters (a ValueError naming the parameter) exits with
    status 1 and that message, not a traceback.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    nodes: list[Node] = []
    status = 0
    try:
        built = make_nodes()
        nodes = built if isinstance(built, list) else [built]
        executor = executor or SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        while rclpy.ok():
            # A bounded wait, so the interrupt is seen even by a node with nothing scheduled.
            executor.spin_once(timeout_sec=0.1)
    except ValueError as err:
        print(f"{sys.argv[0]}: {err}", file=sys.stderr)
        status = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return status
