"""Recording sim demonstrations into a LeRobotDataset and reading them back with LeRobot."""

import numpy as np
import pytest

from test.data._support import skip_without_lerobot

skip_without_lerobot()

from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402

from asyncvla_ros.data import DEFAULT_REPO_ID, load_dataset  # noqa: E402
from asyncvla_ros.data.features import ACTION, FRONT_IMAGE, STATE, WRIST_IMAGE  # noqa: E402
from asyncvla_ros.data.load import hub_offline  # noqa: E402
from asyncvla_ros.sim import INSTRUCTIONS, JOINT_NAMES, SimArm, SimArmConfig  # noqa: E402
from test.data.conftest import EPISODES, IMAGE_SIZE_PX, SEED  # noqa: E402


@pytest.fixture(scope="module")
def dataset(recorded):
    root, _ = recorded
    with hub_offline():
        return LeRobotDataset(DEFAULT_REPO_ID, root=root)


@pytest.fixture(scope="module")
def columns(dataset):
    """The stored non-image columns as numpy arrays, (N, ...) each."""
    keys = (STATE, ACTION, "episode_index", "frame_index", "index", "timestamp", "task_index")
    table = dataset.hf_dataset.select_columns(list(keys)).with_format("numpy")[:]
    return {k: np.asarray(table[k]) for k in keys}


def test_report_matches_the_dataset(recorded, dataset):
    _, report = recorded
    assert report["episodes_attempted"] == EPISODES
    assert report["successes"] + report["failures"] == EPISODES
    assert len(report["failed_seeds"]) == report["failures"]
    # The expert solves these seeds (test/sim checks it): every episode is stored.
    assert report["successes"] == EPISODES and report["success_rate"] == 1.0
    assert dataset.num_episodes == report["episodes_saved"] == EPISODES
    assert dataset.num_frames == len(dataset) == report["frames"] > 0
    assert report["bytes_on_disk"] > 0 and report["seconds"] > 0
    assert not (recorded[0] / "images").exists()  # the PNG staging folders are gone: all is in parquet


def test_feature_specs(dataset):
    features = dataset.meta.features
    for key in (FRONT_IMAGE, WRIST_IMAGE):
        assert features[key]["dtype"] == "image"
        assert tuple(features[key]["shape"]) == (IMAGE_SIZE_PX, IMAGE_SIZE_PX, 3)
    for key in (STATE, ACTION):
        assert features[key]["dtype"] == "float32"
        assert tuple(features[key]["shape"]) == (6,)
        assert list(features[key]["names"]) == list(JOINT_NAMES)
    assert dataset.fps == 20 and dataset.meta.robot_type == "so101_sim"


def test_frames_have_the_right_shapes_and_dtypes(dataset):
    for i in (0, len(dataset) // 2, len(dataset) - 1):
        frame = dataset[i]
        for key in (FRONT_IMAGE, WRIST_IMAGE):  # LeRobot returns images as (C, H, W) floats in [0, 1]
            image = frame[key].numpy()
            assert image.shape == (3, IMAGE_SIZE_PX, IMAGE_SIZE_PX) and image.dtype == np.float32
            assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0
        for key in (STATE, ACTION):
            assert frame[key].shape == (6,) and frame[key].numpy().dtype == np.float32
        assert frame["task"] in INSTRUCTIONS


def test_episode_boundaries(dataset, columns):
    episode, frame_index, index = columns["episode_index"], columns["frame_index"], columns["index"]
    np.testing.assert_array_equal(index, np.arange(len(dataset)))
    assert np.all(np.diff(episode) >= 0) and sorted(set(episode.tolist())) == list(range(EPISODES))
    episodes = dataset.meta.episodes
    for ep in range(EPISODES):
        start, stop = episodes["dataset_from_index"][ep], episodes["dataset_to_index"][ep]
        np.testing.assert_array_equal(np.flatnonzero(episode == ep), np.arange(start, stop))
        np.testing.assert_array_equal(frame_index[start:stop], np.arange(stop - start))
        np.testing.assert_allclose(columns["timestamp"][start:stop], np.arange(stop - start) / 20, atol=1e-5)
        assert episodes["length"][ep] == stop - start
        # One instruction per episode.
        assert len(set(columns["task_index"][start:stop].tolist())) == 1


def test_tasks_are_the_instructions_each_seed_draws(dataset):
    arm = SimArm(SimArmConfig(cameras=()))
    try:
        for ep in range(EPISODES):
            arm.reset(seed=SEED + ep)
            start = dataset.meta.episodes["dataset_from_index"][ep]
            assert dataset[start]["task"] == arm.instruction
            assert list(dataset.meta.episodes["tasks"][ep]) == [arm.instruction]
    finally:
        arm.close()
    assert set(dataset.meta.tasks.index) <= set(INSTRUCTIONS)


def test_first_frame_is_the_reset_observation(dataset):
    """Lossless round trip: the stored first frame is what the sim shows after reset(seed)."""
    arm = SimArm(SimArmConfig(image_size_px=IMAGE_SIZE_PX))
    try:
        observation = arm.reset(seed=SEED)
    finally:
        arm.close()
    frame = dataset[0]
    for camera, key in (("front", FRONT_IMAGE), ("wrist", WRIST_IMAGE)):
        stored = np.round(frame[key].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)  # (H, W, 3)
        np.testing.assert_array_equal(stored, observation.images[camera])
    np.testing.assert_array_equal(frame[STATE].numpy(), observation.joint_positions_rad.astype(np.float32))


def test_actions_are_finite_and_within_the_joint_limits(columns):
    arm = SimArm(SimArmConfig(cameras=()))
    lower, upper = arm.joint_limits_rad
    arm.close()
    for key in (ACTION, STATE):
        values = columns[key]
        assert values.shape[1] == 6 and np.all(np.isfinite(values))
    actions = columns[ACTION]
    tolerance = 1e-6  # float32 rounding of targets clipped to the limits
    assert np.all(actions >= lower - tolerance) and np.all(actions <= upper + tolerance)
    assert np.ptp(actions, axis=0).max() > 0.1  # the arm was commanded to move


def test_state_follows_the_previous_action(columns):
    """The arm tracks the recorded targets: frame t+1's state lies near frame t's action."""
    episode, state, action = columns["episode_index"], columns[STATE], columns[ACTION]
    same = episode[1:] == episode[:-1]
    arm_error = np.abs(state[1:, :5] - action[:-1, :5])[same]  # the gripper is stopped by the cube
    assert np.median(arm_error) < 0.05


def test_load_dataset_reopens_it_offline(recorded, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("load_dataset touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    root, report = recorded
    dataset = load_dataset(root)
    assert dataset.num_frames == report["frames"] and dataset.num_episodes == EPISODES
