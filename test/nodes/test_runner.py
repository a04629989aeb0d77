"""The node main() every executable shares (nodes/runner.py), on a real rclpy node in a child process:
SIGINT ends it at once with status 0 and a clean log, also while it is still being built (a model
loading), and a close() that hangs is cut off after CLOSE_LIMIT_S with every thread's stack and status 1."""

import re
import signal
import subprocess
import sys
import textwrap
import time


from ..ros_support import require_ros_messages

SCRIPT = textwrap.dedent("""
    import sys, time
    from rclpy.node import Node
    from asyncvla_ros.nodes.runner import run_and_exit

    BUILD_S, CLOSE_S = float(sys.argv[1]), float(sys.argv[2])

    class Sleepy(Node):
        def __init__(self):
            super().__init__("runner_test")
            self.create_timer(0.01, lambda: None)
            print("spinning", flush=True)

        def close(self):
            time.sleep(CLOSE_S)

    def make():
        time.sleep(BUILD_S)
        return Sleepy()

    run_and_exit(make, [])
""")


def start(build_s: float, close_s: float) -> subprocess.Popen:
    require_ros_messages()
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(build_s), str(close_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


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
