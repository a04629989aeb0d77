"""The node main() every executable shares (nodes/runner.py), on a real rclpy node in a child process:
SIGINT ends it at once with status 0 and a clean log, also while it is still being built (a model
loading), a close() that hangs is cut off after CLOSE_LIMIT_S with every thread's stack and status 1,
and a DDS teardown that hangs (in a C call that holds the GIL, as Fast DDS's may) is cut off after
TEARDOWN_LIMIT_S with the stacks and the status the node would have had."""

import re
import signal
import subprocess
import sys
import textwrap
import time


from ..ros_support import require_ros_messages

SCRIPT = textwrap.dedent("""
    import ctypes, sys, time
    from rclpy.node import Node
    from asyncvla_ros.nodes.runner import run_and_exit

    BUILD_S, CLOSE_S, DESTROY_S, STATUS = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    class Sleepy(Node):
        def __init__(self):
            super().__init__("runner_test")
            self.create_timer(0.01, lambda: None)
            print("spinning", flush=True)

        def close(self):
            time.sleep(CLOSE_S)
            self.exit_status = STATUS

        def destroy_node(self):
            ctypes.PyDLL(None).sleep(DESTROY_S)  # libc's sleep, the GIL held throughout
            super().destroy_node()

    def make():
        time.sleep(BUILD_S)
        return Sleepy()

    run_and_exit(make, [])
""")


def start(build_s: float, close_s: float, destroy_s: int = 0, status: int = 0) -> subprocess.Popen:
    require_ros_messages()
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(build_s), str(close_s), str(destroy_s), str(status)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def interrupt(proc: subprocess.Popen, after_line: str | None, delay_s: float = 0.0) -> tuple[int, float, str]:
    if after_line:
        assert proc.stdout.readline().strip() == after_line
    time.sleep(delay_s)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, time.monotonic() - t0, out


def test_sigint_while_spinning_exits_at_once_and_clean():
    code, seconds, out = interrupt(start(0.0, 0.0), "spinning", 0.5)
    assert code == 0 and "Traceback" not in out and "Error" not in out, out
    print(f"exit {seconds:.2f} s after SIGINT")


def test_sigint_while_the_node_is_still_being_built_does_not_wait_for_it():
    code, seconds, out = interrupt(start(20.0, 0.0), None, 2.0)
    assert code == 0 and "Traceback" not in out, out
    assert seconds < 10.0  # not the 20 s the build would have taken


def test_a_close_that_hangs_is_cut_off_with_every_threads_stack():
    from asyncvla_ros.nodes.runner import CLOSE_LIMIT_S

    code, seconds, out = interrupt(start(0.0, 60.0), "spinning", 0.5)
    assert code == 1 and "Timeout" in out and "in close" in out, out
    assert seconds < CLOSE_LIMIT_S + 10.0


def test_a_slow_close_within_the_limit_exits_clean_and_says_which_part_took_the_time():
    from asyncvla_ros.nodes.runner import CLOSE_LIMIT_S, SLOW_CLOSE_S

    close_s = (SLOW_CLOSE_S + CLOSE_LIMIT_S) / 2
    code, seconds, out = interrupt(start(0.0, close_s), "spinning", 0.5)
    assert code == 0 and "Timeout" not in out, out
    took = re.search(r"closing took ([\d.]+) s \(close ([\d.]+) s, destroy_node [\d.]+ s, rclpy shutdown [\d.]+ s\)", out)
    assert took and float(took.group(2)) >= close_s - 0.1, out


def test_a_dds_teardown_that_hangs_holding_the_gil_ends_with_the_nodes_status_and_its_stacks():
    from asyncvla_ros.nodes.runner import TEARDOWN_LIMIT_S

    for status in (0, 3):
        code, seconds, out = interrupt(start(0.0, 0.0, destroy_s=60, status=status), "spinning", 0.5)
        assert code == status and "Timeout" in out and "in destroy_node" in out, out
        assert TEARDOWN_LIMIT_S <= seconds < TEARDOWN_LIMIT_S + 5.0, seconds


def test_the_exit_timer_ends_a_process_whose_gil_is_held_and_a_cancelled_one_does_not():
    script = textwrap.dedent("""
        import ctypes, sys
        from asyncvla_ros.nodes.runner import ExitTimer
        ExitTimer(0.3, 0).cancel()
        ExitTimer(0.5, int(sys.argv[1]))
        ctypes.PyDLL(None).sleep(30)
        sys.exit(99)
    """)
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script, "7"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr
    assert time.monotonic() - t0 < 15.0
