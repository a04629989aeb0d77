"""The main() every node executable shares.

rclpy's own SIGINT handler shuts the context down at once, while timers, worker threads and publishers
may still be running; they then fail with "context is invalid" and the node dies with a traceback.
Here the context stays valid until the node is closed: SIGINT and SIGTERM only set a flag, which the
spin loop reads between callbacks (an exception raised from the handler could land inside rclpy's
C++ calls: "RuntimeError: Unable to convert call argument '0' to Python object" from take_message),
spinning stops, the node stops its own threads (`close()`), and only then is rclpy shut down.

`run_and_exit` then ends the process at once, without the interpreter's teardown: its garbage
collection over torch and transformers objects took the policy nodes 3.4-4.8 s on a busy 2-core
machine, past ros2 launch's 5 s grace before it escalates to SIGTERM.

Stopping has two bounded parts, both inside the launchers' SIGKILL (10 s after SIGINT; their SIGTERM at
5 s only reaches a node that is already closing):
- the nodes' own `close()` (motion disabled, bags flushed, threads stopped), at most CLOSE_LIMIT_S:
  past it, every thread's stack goes to the log and the process exits 1, a hang of ours;
- then DDS teardown (destroy_node, rclpy shutdown), at most TEARDOWN_LIMIT_S: past it, the stacks
  go to the log and the process exits with the status it would have had, the nodes having closed.
  Fast DDS 3.2.3 has blocked there for over 8 s on a loaded 2-core machine (in Publisher.destroy
  and in the node's own destroy), inside C calls that need not release the GIL; the peers then see
  the participant go by its lease instead of its goodbye.
A close slower than SLOW_CLOSE_S says which part took the time.
`kill -USR1 <pid>` writes the stacks of a running node, for a node that seems stuck.
"""

from __future__ import annotations

import ctypes
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


CLOSE_LIMIT_S = 7.0  # the nodes' close() taking longer is a hang: stacks to the log, exit 1
TEARDOWN_LIMIT_S = 2.0  # DDS teardown after it taking longer: stacks to the log, exit with the nodes' status
TEARDOWN_EXIT_AFTER_DUMP_S = 0.2  # the exit follows the stack dump by this much
SLOW_CLOSE_S = 1.0  # closing longer than this is logged with the time of each part
_stop = threading.Event()
_building = False  # the nodes are being built: nothing to close yet, so an interrupt may abort it at once


class _TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("interval", _TimeSpec), ("value", _TimeSpec)]


class _SigEvent(ctypes.Structure):  # Linux's struct sigevent as SIGEV_THREAD fills it (64 bytes)
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p), ("pad", ctypes.c_int * 8)]


class ExitTimer:
    """Ends the process with `status` after `seconds`, unless cancelled, even while another thread holds
    the GIL in a C call that does not return: a POSIX timer (timer_create with SIGEV_THREAD) calls libc's
    `_exit(status)` on a thread of libc's own, which never enters Python. A Python thread could not
    (it needs the GIL), and faulthandler's own timer can only exit 1. Python has no binding for
    timer_create, hence ctypes; where libc has none, the timer is faulthandler's (status 1)."""

    SIGEV_THREAD = 2
    CLOCK_MONOTONIC = 1

    def __init__(self, seconds: float, status: int) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._timer = ctypes.c_void_p()
        try:
            exit_fn = ctypes.cast(self._libc._exit, ctypes.c_void_p).value
            event = _SigEvent(value=status, notify=self.SIGEV_THREAD, function=exit_fn)
            if self._libc.timer_create(self.CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(self._timer)) != 0:
                raise OSError(ctypes.get_errno(), "timer_create")
        except (AttributeError, OSError):
            self._timer = None
            faulthandler.dump_traceback_later(seconds, exit=True)
            return
        whole = int(seconds)
        spec = _ITimerSpec(value=_TimeSpec(whole, int((seconds - whole) * 1e9)))
        self._libc.timer_settime(self._timer, 0, ctypes.byref(spec), None)

    def cancel(self) -> None:
        if self._timer is None:
            faulthandler.cancel_dump_traceback_later()
        else:
            self._libc.timer_delete(self._timer)
            self._timer = None


def _interrupt(signum, frame) -> None:
    _stop.set()
    if _building:  # loading a model can take seconds: stop now, not after it
        raise KeyboardInterrupt


def run(make_nodes: Callable[[], Node | list[Node]], args=None, executor: Executor | None = None,
        close_limit_s: float | None = None, teardown_limit_s: float | None = None) -> int:
    """Initialise rclpy, build the node(s), spin until Ctrl-C/SIGTERM, close them, shut down.

    A node that cannot be built from its parameters (a ValueError naming the parameter) exits with
    status 1 and that message, not a traceback.

    Args:
        close_limit_s: if the nodes' close() takes longer (a hang in a driver call, a thread that does
            not stop), every thread's stack goes to stderr and the process exits with status 1, by
            faulthandler's own thread, which needs no GIL: a supervisor gets an exit and a reason, not a
            process it has to kill.
        teardown_limit_s: if DDS teardown after the close takes longer, the stacks go to stderr and
            the process exits with the status it would have returned (`ExitTimer`, no GIL needed
            either). None: no limit, and the caller goes on after `run` returns.
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
        t0 = time.monotonic()
        if close_limit_s is not None:
            faulthandler.dump_traceback_later(close_limit_s, exit=True)
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
        phases = {"close": time.monotonic() - t0}
        status = max([status, *(getattr(node, "exit_status", 0) for node in nodes)])  # e.g. a failed bag replay
        if teardown_limit_s is not None:
            faulthandler.dump_traceback_later(teardown_limit_s)  # the stuck teardown's stacks, then:
            sys.stdout.flush()
            sys.stderr.flush()
            exit_timer = ExitTimer(teardown_limit_s + TEARDOWN_EXIT_AFTER_DUMP_S, status)
        t = time.monotonic()
        for node in reversed(nodes):
            node.destroy_node()
        phases["destroy_node"] = time.monotonic() - t
        t = time.monotonic()
        rclpy.try_shutdown()
        phases["rclpy shutdown"] = time.monotonic() - t
        if teardown_limit_s is not None:
            exit_timer.cancel()
        faulthandler.cancel_dump_traceback_later()
        if time.monotonic() - t0 > SLOW_CLOSE_S:  # which part, for a stop that came near a limit
            print(f"{sys.argv[0]}: closing took {time.monotonic() - t0:.1f} s ("
                  + ", ".join(f"{name} {s:.1f} s" for name, s in phases.items()) + ")", file=sys.stderr, flush=True)
    return status


def run_and_exit(make_nodes: Callable[[], Node | list[Node]], args=None) -> None:
    """A node executable's main(): `run`, then end the process with its status once everything is closed
    and flushed (rclpy's shutdown has closed the ROS log files)."""
    status = run(make_nodes, args, close_limit_s=CLOSE_LIMIT_S, teardown_limit_s=TEARDOWN_LIMIT_S)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
