"""`asyncvla-ros bag-to-dataset`: a bag of the graph's topics (cameras, joint states, the commands the
safety filter let through, the instruction, and an episode-marker topic), written here with the bag
writer, becomes a LeRobotDataset through LeRobot's API: episodes split at the marker, frames at the
given rate with each camera's and the state's newest message and the command that followed, the task
from the instruction, radians recorded in info.json; and `asyncvla-ros train` trains on it as is."""

import json

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("lerobot")

from asyncvla_ros.bags.topics import IMAGE, JOINT_STATE  # noqa: E402
from asyncvla_ros.bags.types import typestore  # noqa: E402
from asyncvla_ros.bags.writer import BagWriter, BagWriterConfig  # noqa: E402

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def write_demo_bag(path, seconds: float = 4.0, instruction_at_ns: int | None = T0, mark_delay_ms: int = 0,
                   image_stamp_offset_ns: int = 0):
    store = typestore()
    T = store.types
    cdr = lambda msg, kind: bytes(store.serialize_cdr(msg, kind))  # noqa: E731

    def stamp(ns):
        return T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)

    def header(ns):
        return T["std_msgs/msg/Header"](stamp=stamp(ns), frame_id="")

    def joints(ns, q, kind="joint_states"):
        return cdr(T[JOINT_STATE](header=header(ns), name=JOINTS, position=np.asarray(q, np.float64),
                                  velocity=np.zeros(0), effort=np.zeros(0)), JOINT_STATE)

    with BagWriter(BagWriterConfig(path, "mcap")) as w:
        for topic, kind, qos in (("/front/image_raw", IMAGE, "default"), ("/wrist/image_raw", IMAGE, "default"),
                                 ("/joint_states", JOINT_STATE, "default"), ("/safe_joint_command", JOINT_STATE, "default"),
                                 ("/instruction", "std_msgs/msg/String", "latched"), ("/episode", "std_msgs/msg/String", "default")):
            w.add_topic(topic, kind, qos)
        if instruction_at_ns is not None:
            w.write("/instruction", cdr(T["std_msgs/msg/String"](data="put the red cube in the blue area"), "std_msgs/msg/String"),
                    instruction_at_ns)
        for k in range(int(seconds * 20)):  # 20 Hz states and commands, 10 Hz cameras
            t = T0 + k * 50 * MS
            q = np.full(6, 0.01 * k)
            w.write("/joint_states", joints(t, q), t + 1 * MS)
            w.write("/safe_joint_command", joints(t + 2 * MS, q + 0.005), t + 3 * MS)
            if k % 2 == 0:
                for cam, shade in (("front", 0), ("wrist", 100)):
                    img = np.full((24, 32, 3), (shade + k) % 256, np.uint8)
                    msg = T["sensor_msgs/msg/Image"](header=header(t + image_stamp_offset_ns), height=24, width=32, encoding="rgb8", is_bigendian=0,
                                                     step=96, data=img.ravel())
                    w.write(f"/{cam}/image_raw", cdr(msg, IMAGE), t + 4 * MS)
            if k == 40:  # a new episode 2 s in
                w.write("/episode", cdr(T["std_msgs/msg/String"](data="start"), "std_msgs/msg/String"), t + mark_delay_ms * MS)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from asyncvla_ros.bags.to_dataset import convert

    root = tmp_path_factory.mktemp("b2d")
    write_demo_bag(root / "bag")
    report = convert([root / "bag"], root / "ds", fps=10, split_topic="/episode", video=False)
    return root, report


def test_a_graph_bag_becomes_a_lerobot_dataset_split_at_the_episode_topic(converted):
    from asyncvla_ros.data.load import load_dataset

    root, report = converted
    assert report["episodes"] == 2 and report["joint_names"] == JOINTS
    info = json.loads((root / "ds" / "meta" / "info.json").read_text())
    assert info["asyncvla_joint_units"] == "rad" and info["total_episodes"] == 2
    ds = load_dataset(root / "ds", required=["observation.images.front", "observation.images.wrist", "observation.state",
                                             "action", "task"])
    assert len(ds) == report["frames"] and 35 <= len(ds) <= 40  # about 4 s at 10 frames/s, from when all topics flow
    item = ds[5]
    state, action = item["observation.state"].numpy(), item["action"].numpy()
    # The command that followed the frame: one state step (0.01 rad) plus the command's offset at most.
    assert np.all(action - state > 0.0) and np.all(action - state <= 0.0151)
    assert item["task"] == "put the red cube in the blue area"
    episodes = np.asarray(ds.hf_dataset.select_columns(["episode_index"]).with_format("numpy")[:]["episode_index"])
    assert sorted(set(episodes.tolist())) == [0, 1] and (episodes == 0).sum() in range(18, 22)


def test_an_instruction_that_reaches_the_recorder_after_the_cameras_is_the_first_episodes_task(tmp_path):
    from asyncvla_ros.bags.types import BagError
    from asyncvla_ros.bags.to_dataset import convert

    write_demo_bag(tmp_path / "late", instruction_at_ns=T0 + 1000 * MS)  # 1 s in: 10 frames before it
    report = convert([tmp_path / "late"], tmp_path / "ds", fps=10, split_topic="/episode", video=False)
    assert report["episodes"] == 2
    from asyncvla_ros.data.load import load_dataset

    ds = load_dataset(tmp_path / "ds", required=["task"])
    assert {ds[i]["task"] for i in range(len(ds))} == {"put the red cube in the blue area"}
    write_demo_bag(tmp_path / "none", instruction_at_ns=None)
    with pytest.raises(BagError, match="before any instruction was recorded; give --task"):
        convert([tmp_path / "none"], tmp_path / "ds_none", fps=10, split_topic="/episode", video=False)


def test_no_frame_of_a_new_episode_was_captured_before_its_mark(tmp_path):
    from asyncvla_ros.bags.to_dataset import convert
    from asyncvla_ros.data.load import load_dataset

    # The mark 2 ms after the tick-40 capture, before its images are logged (4 ms): at the first frame time
    # after the mark the newest images still show tick 38, so the episode starts one frame set later.
    write_demo_bag(tmp_path / "bag", mark_delay_ms=2)
    assert convert([tmp_path / "bag"], tmp_path / "ds", fps=10, split_topic="/episode", video=False)["episodes"] == 2
    ds = load_dataset(tmp_path / "ds", required=["observation.images.front", "observation.state"])
    second = [ds[i] for i in range(len(ds)) if int(ds[i]["episode_index"]) == 1]
    ticks = [round(float(item["observation.images.front"].flatten()[0]) * 255) for item in second]  # front shade = tick
    assert min(ticks) >= 42 and min(float(item["observation.state"][0]) for item in second) >= 0.42 - 1e-6, ticks
    # Cameras stamping in another clock (here 10 s behind the bag's): nothing is captured after the mark, and
    # the conversion says so instead of dropping the rest of the bag.
    from asyncvla_ros.bags.types import BagError

    write_demo_bag(tmp_path / "clock", seconds=6.0, image_stamp_offset_ns=-10 * 10**9)  # 4 s after the mark
    with pytest.raises(BagError, match="another clock than the bag"):
        convert([tmp_path / "clock"], tmp_path / "ds_clock", fps=10, split_topic="/episode", video=False)


def test_train_reads_its_units_from_the_converted_dataset(converted, tmp_path):
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.cli import main as train

    root, _ = converted
    args = ["--dataset", str(root / "ds"), "--out", str(tmp_path / "run"), "--image-size-px", "56", "--steps", "1",
            "--rater-steps", "0", "--batch-size", "2", "--warmup-steps", "0", "--chunk-len", "4", "--history-len", "2"]
    assert train(args) == 0
    joints = AsyncVLAPolicy.from_pretrained(tmp_path / "run" / "final").config.joints
    assert joints.names == tuple(JOINTS) and joints.units == ("rad",) * 6


def test_a_bag_without_commands_or_an_unknown_split_topic_is_a_clear_error(tmp_path):
    from asyncvla_ros.bags.to_dataset import convert
    from asyncvla_ros.bags.types import BagError

    write_demo_bag(tmp_path / "bag", seconds=1.0)
    with pytest.raises(BagError, match="has no /not_there"):
        convert([tmp_path / "bag"], tmp_path / "ds", split_topic="/not_there")
    with pytest.raises(ValueError, match="exists"):
        convert([tmp_path / "bag"], tmp_path)


def test_the_rerun_reads_a_policys_cameras_from_the_bag_through_a_camera_map(tmp_path):
    from asyncvla_ros.bags.recording import load
    from asyncvla_ros.bags.types import BagError

    write_demo_bag(tmp_path / "bag", seconds=1.0)
    rec = load(tmp_path / "bag", ("top", "wrist"), {"top": "front"})
    assert set(rec.frames) == {"top", "wrist"} and len(rec.frames["top"]) == len(rec.frames["wrist"]) == 10
    assert rec.frames["top"][0].rgb[0, 0, 0] == 0 and rec.frames["wrist"][0].rgb[0, 0, 0] == 100  # front's frames, wrist's own
    with pytest.raises(BagError, match="has no /top/image_raw"):
        load(tmp_path / "bag", ("top", "wrist"))


def test_degrees_and_renamed_cameras_are_what_the_dataset_holds_and_says(converted, tmp_path):
    from asyncvla_ros.bags.to_dataset import convert
    from asyncvla_ros.data.load import load_dataset

    root, _ = converted
    report = convert([root / "bag"], tmp_path / "ds", fps=10, split_topic="/episode", video=False, units="deg",
                     camera_map=("top:=front",))
    assert report["cameras"] == ["top", "wrist"] and report["units"] == "deg"
    assert json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["asyncvla_joint_units"] == "deg"
    rad = load_dataset(root / "ds", required=["observation.state"])[5]["observation.state"].numpy()
    deg = load_dataset(tmp_path / "ds", required=["observation.images.top", "observation.state"])[5]
    np.testing.assert_allclose(deg["observation.state"].numpy(), np.degrees(rad), rtol=1e-5)
    for bad, match in ((("top=front",), "write DATASET_CAMERA:=GRAPH_CAMERA"), (("top:=side",), "'side' is not one of"),
                       (("wrist:=front",), "two cameras one name")):
        with pytest.raises(ValueError, match=match):
            convert([root / "bag"], tmp_path / "bad", camera_map=bad)
