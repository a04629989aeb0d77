"""Feature checks, dataset loading errors, recording options and the `demos` CLI's argument errors."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from asyncvla_ros.data.features import (
    ACTION,
    FRONT_IMAGE,
    REQUIRED_FEATURES,
    STATE,
    WRIST_IMAGE,
    MissingFeatureError,
    check_features,
    demo_features,
)
from asyncvla_ros.data.record import RecordConfig, record_demos


def _meta(features, tasks=("put the red cube in the blue area",)):
    """A stand-in with what check_features reads from LeRobot's metadata."""
    return SimpleNamespace(features=dict.fromkeys(features), tasks=list(tasks), root="/data/demos")


ALL_STORED = (FRONT_IMAGE, WRIST_IMAGE, STATE, ACTION, "timestamp", "frame_index", "episode_index", "index", "task_index")


def test_check_features_accepts_a_complete_dataset():
    check_features(_meta(ALL_STORED))
    check_features(SimpleNamespace(meta=_meta(ALL_STORED)))  # a dataset: its .meta is read


@pytest.mark.parametrize("missing", [WRIST_IMAGE, STATE, ACTION])
def test_missing_feature_is_named_and_the_present_ones_listed(missing):
    present = [f for f in ALL_STORED if f != missing]
    with pytest.raises(MissingFeatureError) as info:
        check_features(_meta(present))
    message = str(info.value)
    assert f"'{missing}'" in message and "/data/demos" in message
    listed = message.split("it has: ")[1]
    for name in present:
        assert name in listed
    assert missing not in listed


def test_task_needs_task_strings():
    with pytest.raises(MissingFeatureError, match="'task'"):
        check_features(_meta(ALL_STORED, tasks=()))
    with pytest.raises(MissingFeatureError, match="'task'"):
        check_features(_meta([f for f in ALL_STORED if f != "task_index"]))


def test_demo_features_cover_everything_required_but_the_task():
    features = demo_features(32, ("a", "b", "c", "d", "e", "f"))
    assert set(features) == set(REQUIRED_FEATURES) - {"task"}
    assert features[FRONT_IMAGE]["shape"] == (32, 32, 3) and features[STATE]["names"] == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("episodes", 0), ("seed", -1), ("image_size_px", 8), ("fps", 0), ("max_duration_s", float("nan")),
     ("settle_s", -1.0), ("image_writer_threads", -1), ("repo_id", "no_owner"), ("episodes", 2.5),
     ("displace_fraction", 1.5), ("displace_fraction", float("nan")), ("displace_window_s", (3.0, 0.5)),
     ("displace_window_s", (0.0, 1.0)), ("displace_window_s", (1.0, 99.0))],
)
def test_record_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=rf"RecordConfig\.{field}"):
        RecordConfig(**{field: value})


def test_record_demos_refuses_an_existing_folder(tmp_path):
    with pytest.raises(FileExistsError, match="new folder"):
        record_demos(tmp_path, episodes=1, seed=0)


def test_cli_reports_a_bad_option_with_its_field():
    out = subprocess.run(
        [sys.executable, "-m", "asyncvla_ros.cli", "demos", "--out", "/nonexistent/x", "--episodes", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "RecordConfig.episodes" in out.stderr


def test_cli_help_lists_demos():
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert "demos" in out.stdout


class TestLoadDataset:
    """load_dataset on real (tiny, hand-made) LeRobot datasets."""

    @pytest.fixture(autouse=True)
    def _needs_lerobot(self):
        pytest.importorskip("lerobot", reason="LeRobot is not installed (requirements/nodeps.txt)")

    def test_a_folder_without_a_dataset(self, tmp_path):
        from asyncvla_ros.data.load import DatasetNotFoundError, load_dataset

        with pytest.raises(DatasetNotFoundError, match="asyncvla-ros demos"):
            load_dataset(tmp_path / "nothing")

    def test_a_dataset_without_the_wrist_camera(self, tmp_path):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        from asyncvla_ros.data.load import load_dataset

        features = demo_features(16, [f"j{i}" for i in range(6)])
        del features[WRIST_IMAGE]
        root = tmp_path / "no_wrist"
        dataset = LeRobotDataset.create(repo_id="local/no_wrist", root=root, fps=20, features=features, use_videos=False)
        for _ in range(2):
            dataset.add_frame({
                FRONT_IMAGE: np.zeros((16, 16, 3), np.uint8),
                STATE: np.zeros(6, np.float32),
                ACTION: np.zeros(6, np.float32),
                "task": "put the red cube in the blue area",
            })
        dataset.save_episode()
        dataset.finalize()

        with pytest.raises(MissingFeatureError) as info:
            load_dataset(root)
        message = str(info.value)
        assert f"'{WRIST_IMAGE}'" in message
        assert FRONT_IMAGE in message and STATE in message and "task" in message
        # Reading what is there works when the caller needs no wrist camera.
        assert len(load_dataset(root, required=[FRONT_IMAGE, STATE, ACTION, "task"])) == 2
