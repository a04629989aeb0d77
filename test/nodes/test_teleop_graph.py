"""Demonstrations through the ROS graph: `teleop:=expert` runs the sim's scripted expert as a node in place
of the policy, over real rclpy, every node its own process. Its commands go through the safety filter to
the driver, and it solves the sim task there. `asyncvla-ros record` beside it records the episode, and
`asyncvla-ros bag-to-dataset` turns the bag into a LeRobotDataset whose actions are the commands the
filter let through and whose task is the instruction the expert demonstrated. It demonstrates two
episodes in one run: after the first the expert asks the sim driver for the next scene, the driver
resets the world in place and marks the start on `/episode`, where `bag-to-dataset` splits them.

The whole loop: the same bag converted as another tool would name and scale it (video, degrees, the
front camera called `top`), a tiny policy trained on it for a few steps, and that policy launched on
the emulated SO100 bus through a `camera_map` and the degrees -> radians conversion, every command
reaching the bus in radians inside the joint limits."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ..ros_support import REPO, NodeProcess, Probe, require_ros_messages
from ..sim._support import skip_without_sim

PARAMS = REPO / "config" / "sim.yaml"
TOPICS = ("/front/image_raw", "/wrist/image_raw", "/joint_states", "/safe_joint_command", "/instruction", "/episode")
EPISODES = {"expert.episodes": 2, "expert.pause_s": 0.5}


def cli(*args):
    return [sys.executable, "-m", "asyncvla_ros.cli", *args]


@pytest.fixture(scope="module")
def demonstrated(tmp_path_factory):
    require_ros_messages()
    skip_without_sim()
    pytest.importorskip("rosbags")
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from asyncvla_ros.launch_graph import LaunchArgs, graph

    from .test_driver_node import transition

    root = tmp_path_factory.mktemp("teleop")
    probe = Probe("teleop_probe")
    probe.record(JointState, "safe_joint_command")
    probe.record(DiagnosticArray, "diagnostics")
    specs = graph(LaunchArgs(teleop="expert", visualizer=False))
    assert [s.name for s in specs] == ["driver", "front_camera", "wrist_camera", "safety_filter", "teleop"]
    procs = [NodeProcess(spec, PARAMS, root, EPISODES if spec.name == "teleop" else None) for spec in specs]
    recorder = subprocess.Popen(cli("record", str(root / "bag"), "--topics", *TOPICS), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert transition(probe, "configure") and transition(probe, "activate")

        def teleop():
            return [s for m in probe.messages("diagnostics") for s in m.status if s.name == "teleop"]

        def solved():
            return any(int({kv.key: kv.value for kv in s.values}.get("solved", 0)) >= 2 for s in teleop())

        probe.wait_for(solved, 150, "the expert solving two sim episodes through the graph")
        statuses = teleop()
        commands = probe.messages("safe_joint_command")
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder_out, _ = recorder.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder_out, _ = recorder.communicate()
        logs = "\n".join(f"--- {p.name}\n{p.output()[-2000:]}" for p in procs)
        for proc in reversed(procs):
            proc.stop()
        probe.close()
    return root, statuses, commands, recorder_out, logs


def test_the_expert_node_solves_the_task_through_the_safety_filter(demonstrated):
    _, statuses, commands, _, logs = demonstrated
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert values["source"] == "expert" and int(values["episodes"]) == 2 and int(values["rejected"]) == 0, logs
    assert len(commands) > 60, logs  # a solved episode takes several seconds of 20 Hz commands
    limits = yaml.safe_load(PARAMS.read_text())["safety_filter"]["ros__parameters"]
    q = np.array([c.position for c in commands])
    assert (q >= np.array(limits["position_lower_rad"]) - 1e-9).all() and (q <= np.array(limits["position_upper_rad"]) + 1e-9).all()
    assert np.ptp(q[:, -1]) > 0.5, "the gripper opened and closed"


def test_the_recorded_episodes_become_a_dataset_with_the_demonstrated_task(demonstrated):
    pytest.importorskip("lerobot")
    root, _, _, recorder_out, _ = demonstrated
    out = subprocess.run(cli("bag-to-dataset", str(root / "bag"), "--out", str(root / "ds"), "--fps", "10", "--images",
                             "--split-topic", "/episode"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr + recorder_out
    from asyncvla_ros.data.load import load_dataset

    info = json.loads((root / "ds" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["asyncvla_joint_units"] == "rad"
    ds = load_dataset(root / "ds", required=["observation.images.front", "observation.images.wrist", "observation.state",
                                             "action", "task"])
    assert len(ds) >= 40  # 10 frames/s over the recorded seconds
    sim = yaml.safe_load(PARAMS.read_text())["driver"]["ros__parameters"]
    assert ds[0]["task"] == sim["sim.instruction"]
    actions = np.stack([np.asarray(ds[i]["action"]) for i in range(len(ds))])
    # Every action is one of the commands the filter let through (the one that followed the frame), as the
    # bag recorded them (the probe's own subscription may match the filter later than the recorder's).
    from ..bags.test_rerun import bag_messages

    sent = np.array([np.asarray(c.position) for c in bag_messages(root / "bag", "/safe_joint_command")])
    nearest = np.min(np.abs(actions[:, None, :] - sent[None, :, :]).max(axis=2), axis=1)
    assert (nearest < 1e-5).all(), nearest.max()
    # The second episode is the next scene's: it starts at the home pose the reset put the arm in, not where
    # the first one left the arm.
    from asyncvla_ros.sim import SimArm, SimArmConfig

    seed = sim["sim.episode_seed"] + 1
    marks = [m.data for m in bag_messages(root / "bag", "/episode")]
    assert marks == [f"seed {seed}: {sim['sim.instruction']}"], marks
    with SimArm(SimArmConfig(cameras=())) as arm:
        home = arm.reset(seed=seed).joint_positions_rad[:5]
    index = np.array([int(ds[i]["episode_index"]) for i in range(len(ds))])
    states = np.stack([np.asarray(ds[i]["observation.state"]) for i in range(len(ds))])
    last0, first1 = states[index == 0][-1, :5], states[index == 1][0, :5]
    # Within 6 ticks' safety-filter steps of home (the first frame set after the reset, up to a frame period
    # and a render later), where the first episode ended more than 0.5 rad away.
    max_step = np.array(yaml.safe_load(PARAMS.read_text())["safety_filter"]["ros__parameters"]["max_step_rad"][:5])
    assert np.all(np.abs(first1 - home) <= 6 * max_step) and np.abs(last0 - home).max() > 0.5, (home, last0, first1)


def test_the_whole_loop_record_convert_train_and_drive_the_so100(demonstrated):
    pytest.importorskip("lerobot")
    pytest.importorskip("cv2")
    pytest.importorskip("torch")
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    from .test_hardware_graph_e2e import drive_emulated_so100

    root = demonstrated[0]
    out = subprocess.run(cli("bag-to-dataset", str(root / "bag"), "--out", str(root / "ds_deg"), "--fps", "10", "--units", "deg",
                             "--camera-map", "top:=front", "--split-topic", "/episode"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    run = root / "run"
    out = subprocess.run(cli("train", "--dataset", str(root / "ds_deg"), "--out", str(run), "--image-size-px", "56", "--steps", "3",
                             "--rater-steps", "1", "--batch-size", "2", "--warmup-steps", "0", "--checkpoint-every", "1000"),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    policy = AsyncVLAPolicy.from_pretrained(run / "final")
    assert policy.config.joints.units == ("deg",) * 6 and tuple(policy.config.backbone.camera_names) == ("top", "wrist")
    drive_emulated_so100(root / "so100", model=str(run / "final"), semantic_overrides={"camera_map": ["top:=front"]})
