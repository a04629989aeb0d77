"""`asyncvla-ros launch` stops cleanly, again and again, and never leaves the arm enabled.

- Start/stop cycles: the whole sim graph starts, acts, and is stopped by SIGINT to the launcher (a
  terminal's Ctrl-C), CYCLES times. Every process exits after SIGINT without escalation to SIGTERM,
  no node log holds a traceback or an rclpy error, and the driver disables motion before it exits.
- A node killed (kill -9 of the semantic node): the launcher deactivates the driver ("motion disabled"
  in the driver's log) before it stops the graph, exits 1, and its last line names the node that died.
- DDS calls of the launcher that never return (a deactivate, closing its own node; once, after a kill
  -9 of a node, the launcher never exited): the launcher prints where it waits, stops every process
  anyway, and exits.
- With --respawn, the same kill restarts the semantic node instead: the graph goes on (the driver stays
  active), the new process publishes semantic features again, and Ctrl-C still stops it all cleanly.

The seconds from SIGINT to each process's exit, and from the kill to "motion disabled", are printed
(figures, not pass/fail: the machine's load decides them).
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncvla_ros.launcher import STALE_AFTER_S

from ..ros_support import require_ros_messages
from ..sim._support import skip_without_sim

CYCLES = 5
DIRTY = ("Traceback", "RuntimeError", "Unable to convert", "terminate called")


def start(log_dir: Path, *options: str) -> tuple[subprocess.Popen, Path]:
    out = log_dir.with_suffix(".out")
    proc = subprocess.Popen([sys.executable, "-m", "asyncvla_ros.cli", "launch", "--log-dir", str(log_dir), *options],
                            stdout=open(out, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    return proc, out


def wait_acting(proc: subprocess.Popen, out: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if re.search(r"\| chunks [1-9]", out.read_text()):
            return
        assert proc.poll() is None, out.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"the graph did not act within {timeout_s} s:\n{out.read_text()[-3000:]}")


def exit_code(proc: subprocess.Popen, out: Path, timeout_s: float = 60.0) -> int:
    """The launcher's exit code, or an AssertionError with the end of its output when it has not exited
    within `timeout_s` (pytest would show only subprocess.TimeoutExpired)."""
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the launcher did not exit within {timeout_s:g} s:\n{out.read_text()[-3000:]}") from None


def unclean_stop_report(out: Path, log_dir: Path) -> str:
    """The launcher's last lines and the end of the log of each process it names as not stopping cleanly
    (its stacks, when the close limit cut it off, and how long each part of closing took)."""
    text = out.read_text()
    named = set(re.findall(r"(\w+) exited with code", text))
    logs = [f"--- {name}.log:\n{(log_dir / f'{name}.log').read_text(errors='replace')[-4000:]}"
            for name in sorted(named) if (log_dir / f"{name}.log").exists()]
    return "\n".join([text[-3000:], *logs])


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every node it started (each in its own session, so a kill of the launcher
    alone would leave them running into the next tests)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for p in [psutil.Process(proc.pid), *children]:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.wait()


def ros_time(line: str) -> float:
    return float(re.search(r"\[(\d+\.\d+)\]", line).group(1))


@pytest.fixture(scope="module", autouse=True)
def needs_the_graph():
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("torch")


def test_the_graph_starts_and_stops_cleanly_again_and_again(tmp_path):
    exits = []
    for cycle in range(CYCLES):
        log_dir = tmp_path / f"cycle{cycle}"
        proc, out = start(log_dir)
        try:
            wait_acting(proc, out)
            proc.send_signal(signal.SIGINT)
            assert exit_code(proc, out) == 0, unclean_stop_report(out, log_dir)
        finally:
            if proc.poll() is None:
                kill_tree(proc)
        text = out.read_text()
        lines = text.strip().splitlines()
        assert lines[-1].startswith("asyncvla-ros: stopped; logs in"), lines[-1]
        assert "still running" not in text, text[-2000:]  # nobody needed SIGTERM
        assert "driver deactivated (motion disabled)" in text
        logs = {p.stem: p.read_text(errors="replace") for p in log_dir.glob("*.log")}
        assert len(logs) == 7, sorted(logs)
        for name, log in logs.items():
            for word in DIRTY:
                assert word not in log, f"cycle {cycle}, {name}.log:\n{log[-3000:]}"
        assert "motion disabled" in logs["driver"]
        exits.append(next(line for line in lines if line.startswith("asyncvla-ros: exited after SIGINT")))
    print("\n".join(exits))


def test_a_dead_node_has_the_driver_deactivated_before_the_graph_stops(tmp_path):
    log_dir = tmp_path / "kill"
    proc, out = start(log_dir)
    try:
        wait_acting(proc, out)
        import psutil

        semantic = [p for p in psutil.Process(proc.pid).children(recursive=True) if "__node:=semantic" in p.cmdline()]
        assert len(semantic) == 1, semantic
        killed_at = time.time()
        semantic[0].kill()
        assert exit_code(proc, out) == 1, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = out.read_text()
    assert text.strip().splitlines()[-1].startswith("asyncvla-ros: stopped because process semantic died (exit code -9)")
    driver = (log_dir / "driver.log").read_text()
    disabled = [line for line in driver.splitlines() if "motion disabled" in line]
    assert disabled and "(driver shutting down)" not in disabled[0]  # the lifecycle deactivate, not the exit
    assert text.index("driver deactivated (motion disabled)") < text.index("exited after SIGINT")
    print(f"driver motion disabled {ros_time(disabled[0]) - killed_at:.2f} s after kill -9 of the semantic node")


HANGING_LAUNCHER = """
import sys, threading
from asyncvla_ros import launcher
launcher.DDS_STEP_LIMIT_S = 2.0
transition = launcher.Monitor.transition
def hanging_deactivate(self, node_name, label, timeout_s=60.0):
    if label == "deactivate":
        threading.Event().wait()
    return transition(self, node_name, label, timeout_s)
launcher.Monitor.transition = hanging_deactivate
launcher.Monitor.close = lambda self: threading.Event().wait()
sys.exit(launcher.main(sys.argv[1:]))
"""


def test_a_dds_call_that_never_returns_does_not_keep_the_graph_running(tmp_path):
    log_dir = tmp_path / "hang"
    out = tmp_path / "hang.out"
    proc = subprocess.Popen([sys.executable, "-c", HANGING_LAUNCHER, "--log-dir", str(log_dir)],
                            stdout=open(out, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_acting(proc, out)
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, out) == 0, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = out.read_text()
    assert "driver deactivate did not return within 2 s; stopping it" in text
    assert "closing the launcher's node did not return within 2 s; exiting without it" in text
    assert 'File "' in text  # the stacks, to show where it waited
    exits = next(line for line in text.splitlines() if line.startswith("asyncvla-ros: exited after SIGINT"))
    assert len(re.findall(r"\w+ \d+\.\d s", exits)) == 7, exits  # every node process stopped
    assert text.strip().splitlines()[-1].startswith("asyncvla-ros: stopped; logs in")
    assert "motion disabled (driver shutting down)" in (log_dir / "driver.log").read_text()


def test_with_respawn_a_killed_node_is_restarted_and_the_graph_goes_on(tmp_path):
    import psutil

    log_dir = tmp_path / "respawn"
    proc, out = start(log_dir, "--respawn")

    def semantic_nodes():
        found = []
        for p in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "__node:=semantic" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:  # exited (or a zombie the launcher has not reaped yet)
                pass
        return found

    try:
        wait_acting(proc, out)
        first = semantic_nodes()
        assert len(first) == 1, first
        first[0].kill()
        def restarted() -> bool:  # one look at the process tree: two could see it change in between
            now = semantic_nodes()
            return len(now) == 1 and now[0].pid != first[0].pid

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not restarted():
            assert proc.poll() is None, out.read_text()[-3000:]
            time.sleep(0.2)
        text = out.read_text()
        assert "restarting it in 1 s (restart 1 of 5)" in text
        since = text.index("restarting it in 1 s")

        def semantic_back():
            """The new process publishes: a live line more than STALE_AFTER_S after the first line printed
            after the restart notice (so after the kill) shows semantic figures with no stale mark, and only
            diagnostics received after the kill leave them unmarked. How long the new process takes to start
            is the machine's business: its figures may or may not be marked stale in between."""
            stamped = [(float(m.group(1)), line) for line in out.read_text()[since:].splitlines()
                       if (m := re.match(r"\[\s*(\d+\.\d) s\]", line))]
            return bool(stamped) and any(t > stamped[0][0] + STALE_AFTER_S and re.search(r"refresh \d+\.\d+ Hz", line)
                                         and "semantic silent" not in line for t, line in stamped)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not semantic_back():
            assert proc.poll() is None, out.read_text()[-3000:]
            time.sleep(0.5)
        assert semantic_back(), out.read_text()[-3000:]
        assert proc.poll() is None, out.read_text()[-3000:]
        driver = (log_dir / "driver.log").read_text()
        assert "motion disabled" not in driver, driver[-2000:]
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, out) == 0, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            kill_tree(proc)
