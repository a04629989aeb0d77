"""Video LeRobotDatasets, as `lerobot-record` writes them by default: made here with LeRobot's own API
(`LeRobotDataset.create` with `hw_to_dataset_features` for SO100 motors and cameras `top` and `wrist`,
`add_frame`, `save_episode`, `finalize`), then read through `load_dataset`, whose frames PyAV decodes
(data/video.py). Frames match the images that were stored, to the codec's tolerance, in order and at
random; a time with no frame is a clear error; `asyncvla-ros train` trains on the dataset."""

import json

import numpy as np
import pytest

pytest.importorskip("lerobot")
pytest.importorskip("av")

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
SHAPE = (32, 48, 3)
EPISODES, FRAMES = 2, 20


def image(ep: int, i: int, camera: str) -> np.ndarray:
    """A frame whose content says which it is: red ramps with the frame, blue with the episode, green
    across the image (smooth, so a lossy codec keeps it close)."""
    img = np.zeros(SHAPE, np.uint8)
    img[:, :, 0] = (i * 11) % 256
    img[:, :, 1] = (np.arange(SHAPE[1]) * 5)[None, :] + (40 if camera == "wrist" else 0)
    img[:, :, 2] = 60 + ep * 120
    return img


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.utils import hw_to_dataset_features

    root = tmp_path_factory.mktemp("so100_video") / "ds"
    motors = {f"{m}.pos": float for m in MOTORS}
    cameras = {"top": SHAPE, "wrist": SHAPE}
    features = {**hw_to_dataset_features(motors, "action", True),
                **hw_to_dataset_features({**motors, **cameras}, "observation", True)}
    ds = LeRobotDataset.create(repo_id="local/so100_video", fps=30, features=features, root=root,
                               robot_type="so100_follower", use_videos=True)
    rng = np.random.default_rng(0)
    for ep in range(EPISODES):
        for i in range(FRAMES):
            frame = {"task": "pick the cube", "action": rng.uniform(-50, 50, 6).astype(np.float32),
                     "observation.state": rng.uniform(-50, 50, 6).astype(np.float32)}
            frame.update({f"observation.images.{c}": image(ep, i, c) for c in cameras})
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
    assert json.loads((root / "meta" / "info.json").read_text())["features"]["observation.images.top"]["dtype"] == "video"
    return root


def test_every_frame_of_a_video_dataset_decodes_close_to_the_stored_image_in_any_order(video_dataset):
    from asyncvla_ros.data.load import load_dataset

    ds = load_dataset(video_dataset, required=["observation.state", "action"])
    order = list(range(len(ds))) + list(np.random.default_rng(1).permutation(len(ds)))
    seen = {}
    for row in order:
        item = ds[int(row)]
        ep, i = int(item["episode_index"]), int(item["frame_index"])
        for camera in ("top", "wrist"):
            got = (item[f"observation.images.{camera}"].permute(1, 2, 0).numpy() * 255).round()
            err = np.abs(got - image(ep, i, camera)).mean()
            assert err < 8.0, (ep, i, camera, err)  # AV1 is lossy; another frame would be 11+ away in red
            if (row, camera) in seen:
                assert np.array_equal(got, seen[row, camera])  # the same frame, however it was reached
            seen[row, camera] = got
    decoder = ds.__dict__["_pyav_decoder"]
    assert len(decoder._containers) <= decoder.open_files and decoder.decoded >= len(order)


def test_a_time_without_a_frame_or_a_broken_file_is_a_clear_error(video_dataset, tmp_path):
    from asyncvla_ros.data.video import PyAVDecoder, VideoDecodeError

    video = next((video_dataset / "videos" / "observation.images.top").rglob("*.mp4"))
    decoder = PyAVDecoder()
    assert decoder.frames(video, [0.0, 1 / 30], 1e-4).shape == (2, 3, *SHAPE[:2])
    with pytest.raises(VideoDecodeError, match="no frame within"):
        decoder.frames(video, [0.5 / 30], 1e-4)  # between two frames
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:200])
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        decoder.frames(broken, [0.0], 1e-4)


def test_asyncvla_ros_trains_on_a_video_dataset_recorded_with_lerobots_api(video_dataset, tmp_path, capsys):
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.cli import main as train

    args = ["--dataset", str(video_dataset), "--out", str(tmp_path / "run"), "--image-size-px", "56", "--steps", "2",
            "--rater-steps", "1", "--batch-size", "2", "--warmup-steps", "0", "--chunk-len", "4", "--history-len", "2"]
    with pytest.raises(SystemExit, match="recorded by another robot .*give --joint-units"):
        train(args)  # LeRobot's units are not this package's radians: say which they are
    assert not (tmp_path / "run").exists()
    units = ",".join(["range_m100_100"] * 5 + ["range_0_100"])
    assert train(args + ["--joint-units", units]) == 0
    policy = AsyncVLAPolicy.from_pretrained(tmp_path / "run" / "final")
    assert tuple(policy.config.backbone.camera_names) == ("top", "wrist")
    assert policy.config.joints.names == tuple(f"{m}.pos" for m in MOTORS)  # recorded with the units
    assert policy.config.joints.units == ("range_m100_100",) * 5 + ("range_0_100",)


def test_a_video_that_does_not_decode_stops_training_before_anything_is_written(video_dataset, tmp_path):
    import shutil

    from asyncvla_ros.cli import main

    broken = shutil.copytree(video_dataset, tmp_path / "broken")
    video = next((broken / "videos" / "observation.images.wrist").rglob("*.mp4"))
    video.write_bytes(video.read_bytes()[:300])
    assert main(["train", "--dataset", str(broken), "--out", str(tmp_path / "run"), "--steps", "1"]) == 1
    assert not (tmp_path / "run").exists()
