"""The main() every node executable shares.

rclpy's own SIGINT handler shuts the context down at once, while timers, worker threads and publishers
may still be running; they then fail with "context is invalid" and the node dies with a traceback.
Here the context stays valid until the node is closed: SIGINT and SIGTERM only set a flag, which the
spin loop reads between callbacks (an exception raised from the handler could land inside rclpy's
C++ calls: "RuntimeError: Unable to convert call argument '0' to Python object" from take_message),
spinning stops, the node stops its own threads (`close()`), and only then is rclpy shut down.

`run_and_exit` then ends the process at once, without the interpreter's teardown: its garbage
collection over torch and transformers objects took the policy nodes 3.4-4.8 s on a busy 2-core
machine, past ros2 launch's 5 s grace before it escalates to SIGTERM. Closing is bounded too
(CLOSE_LIMIT_S): past it, every thread's stack goes to the log and the process exits 1. The bound lies
between the launchers' SIGTERM (5 s after SIGINT; a closing node only notes it) and their SIGKILL
(10 s): a slow teardown on a loaded machine (closing took a CI machine's nodes 3-4 s) still ends
cleanly, and a hang ends with its stacks before the kill. A close slower than SLOW_CLOSE_S says which
part took the time.
`kill -USR1 <pid>` writes the stacks of a running node, for a node that seems stuck.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


CLOSE_LIMIT_S = 8.0  # closing longer than this is a hang: stacks to the log, exit 1 (launchers: SIGTERM at 5 s, SIGKILL at 10 s)
SLOW_CLOSE_S = 1.0  # closing longer than this is logged with the time of each part
_stop = threading.Event()
_building = False  # the nodes are being built: nothing to close yet, so an interrupt may abort it at once


def _interrupt(signum, frame) -> None:
    _stop.set()
    if _building:  # loading a model can take seconds: stop now, not after it
        raise KeyboardInterrupt


def run(make_nodes: Callable[[], Node | list[Node]], args=None, executor: Executor | None = None,
        close_limit_s: float | None = None) -> int:
    """Initialise rclpy, build the node(s), spin until Ctrl-C/SIGTERM, close them, shut down.

    A node that cannot be built from its parameters (a ValueError naming the parameter) exits with
    status 1 and that message, not a traceback.

    Args:
        close_limit_s: if closing and shutting down take longer (a hang in a driver call or in DDS
            teardown), every thread's stack goes to stderr and the process exits with status 1, by
            faulthandler's own thread, which needs no GIL: a supervisor gets an exit and a reason, not a
            process it has to kill.
    """
    global _building
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    _stop.clear()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack to the log
    nodes: list[Node] = []
    status = 0
    try:
        _building = True
        try:
            built = make_nodes()
        finally:
            _building = False
        nodes = built if isinstance(built, list) else [built]
        executor = executor or SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        while rclpy.ok() and not _stop.is_set():
            # A bounded wait, so the interrupt is seen even by a node with nothing scheduled.
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as err:
        if not _stop.is_set():  # an interrupt while building can surface from inside rclpy as another error
            if not isinstance(err, ValueError):
                raise
            print(f"{sys.argv[0]}: {err}", file=sys.stderr)
            status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        if close_limit_s is not None:
            faulthandler.dump_traceback_later(close_limit_s, exit=True)
        phases = {"close": 0.0, "destroy_node": 0.0}
        t0 = time.monotonic()
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            t = time.monotonic()
            if close is not None:
                close()
            phases["close"] += time.monotonic() - t
            t = time.monotonic()
            node.destroy_node()
            phases["destroy_node"] += time.monotonic() - t
        t = time.monotonic()
        rclpy.try_shutdown()
        phases["rclpy shutdown"] = time.monotonic() - t
        status = max([status, *(getattr(node, "exit_status", 0) for node in nodes)])  # e.g. a failed bag replay
        if time.monotonic() - t0 > SLOW_CLOSE_S:  # which part, for a stop that came near the close limit
            print(f"{sys.argv[0]}: closing took {time.monotonic() - t0:.1f} s ("
                  + ", ".join(f"{name} {s:.1f} s" for name, s in phases.items()) + ")", file=sys.stderr, flush=True)
    return status


def run_and_exit(make_nodes: Callable[[], Node | list[Node]], args=None) -> None:
    """A node executable's main(): `run`, then end the process with its status once everything is closed
    and flushed (rclpy's shutdown has closed the ROS log files)."""
    status = run(make_nodes, args, close_limit_s=CLOSE_LIMIT_S)
    faulthandler.cancel_dump_traceback_later()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
