"""Several robots on one graph: two sim arms, `asyncvla-ros launch --namespace r1` and `--namespace r2`,
on one ROS domain for 20 s. Each acts on its own cameras and joint state with no cross-talk: every
publisher and subscriber of a robot's topics is a node of its namespace, nothing of either graph is on
the root namespace's topics, each arm's driver applies commands, and every command its safety filter
lets through answers a command of its own action node, none the other's."""

import re
import signal
import subprocess
import sys
import time

import pytest

from ..ros_support import Probe, require_ros_messages
from ..sim._support import skip_without_sim

ROBOTS = ("r1", "r2")
TOPICS = ("joint_command", "safe_joint_command", "joint_states", "front/image_raw", "wrist/image_raw",
          "semantic_features", "action_chunk", "sim/world_state")


def start(ns: str, log_dir) -> tuple[subprocess.Popen, object]:
    out = log_dir / f"{ns}.out"
    proc = subprocess.Popen([sys.executable, "-m", "asyncvla_ros.cli", "launch", "--namespace", ns, "--no-visualizer",
                             "--log-dir", str(log_dir / ns)], stdout=open(out, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, out


def test_two_robots_in_two_namespaces_act_without_cross_talk(tmp_path):
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("torch")
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from asyncvla_ros.nodes.conversions import from_time

    graphs = {ns: start(ns, tmp_path) for ns in ROBOTS}
    probe = Probe("namespace_probe")
    try:
        for ns in ROBOTS:
            probe.record(JointState, f"/{ns}/joint_command", 50)
            probe.record(JointState, f"/{ns}/safe_joint_command", 50)
            probe.record(DiagnosticArray, f"/{ns}/diagnostics", 50)
        deadline = time.monotonic() + 300  # two graphs loading on two cores
        while not all(re.search(r"\| chunks [1-9]", out.read_text()) for _, out in graphs.values()):
            for ns, (proc, out) in graphs.items():
                assert proc.poll() is None, f"{ns}:\n{out.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "\n".join(out.read_text()[-1500:] for _, out in graphs.values())
            time.sleep(0.5)
        since = time.monotonic()
        time.sleep(20.0)

        for ns in ROBOTS:
            for topic in TOPICS:
                name = f"/{ns}/{topic}"
                pubs = probe.node.get_publishers_info_by_topic(name)
                subs = [i for i in probe.node.get_subscriptions_info_by_topic(name) if i.node_name != "namespace_probe"]
                assert pubs, f"nobody publishes {name}"
                strangers = [f"{i.node_namespace}/{i.node_name}" for i in pubs + subs if i.node_namespace != f"/{ns}"]
                assert not strangers, f"{name} has endpoints of other graphs: {strangers}"
        for topic in TOPICS:  # neither graph left anything on the root namespace's topics
            assert not probe.node.get_publishers_info_by_topic(f"/{topic}"), topic

        stamps = {ns: {from_time(m.header.stamp) for m in probe.messages(f"/{ns}/joint_command")} for ns in ROBOTS}
        for ns in ROBOTS:
            other = next(o for o in ROBOTS if o != ns)
            safe = [from_time(m.header.stamp) for m in probe.messages(f"/{ns}/safe_joint_command", since)]
            assert safe, f"no command reached {ns}'s driver"
            assert not [s for s in safe if s in stamps[other]], f"{ns}'s driver got commands of {other}'s action node"
            # Each answers a command of its own action node (the probe, on two loaded cores, may miss some).
            own = sum(s in stamps[ns] for s in safe)
            assert own >= 0.5 * len(safe), f"{ns}: only {own} of {len(safe)} safe commands answer a command of its own"
            drivers = [s for m in probe.messages(f"/{ns}/diagnostics", since) for s in m.status if s.name == "driver"]
            applied = [int(kv.value) for s in drivers for kv in s.values if kv.key == "applied"]
            assert applied and applied[-1] > applied[0], f"{ns}'s driver applied no command: {applied}"
            print(f"{ns}: {len(safe)} commands reached its driver in 20 s ({own} matched to its own action node's); "
                  f"driver applied {applied[0]} -> {applied[-1]}")
    finally:
        probe.close()
        import psutil

        nodes = {ns: psutil.Process(proc.pid).children(recursive=True) for ns, (proc, _) in graphs.items() if proc.poll() is None}
        for ns, (proc, out) in graphs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        try:
            for ns, (proc, out) in graphs.items():
                assert proc.wait(120) == 0, f"{ns}:\n{out.read_text()[-3000:]}"
        finally:  # a launcher that failed must not leave its node processes running (they have their own sessions)
            for ns, (proc, out) in graphs.items():
                for p in [proc, *nodes.get(ns, [])]:
                    try:
                        p.kill()
                    except (psutil.NoSuchProcess, ProcessLookupError):
                        pass
