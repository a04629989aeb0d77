"""`asyncvla-ros bag-to-dataset BAG... --out DIR`: demonstrations recorded through the ROS graph, as a
LeRobotDataset written with LeRobot's own API (video by default, `--images` for PNG frames).

Per bag, frames at `--fps` in bag time from the first moment every camera and a joint state have
arrived: each camera's newest image, the newest joint state (`observation.state`), and as `action` the
command the driver was sent next: the first `safe_joint_command` (what the safety filter let through;
`joint_command` in a bag without it) received at or after the frame's time. Episodes: one per bag,
split further at every message on `--split-topic`. A new episode starts with the first frame set whose
images and joint state were all captured (header stamps) after that message, so that no frame mixes
the last scene with the next; the frames between belong to neither. The task is the newest
`instruction` at the episode's start; for an episode whose first frames came before any (a latched
instruction reaches the recorder after the cameras do), the first one said during it; `--task` where
the bag has none. States and actions are in the graph's radians, or
in degrees with `--units deg` (every joint), and the dataset says which (`info.json`:
`asyncvla_joint_units`), so `asyncvla-ros train` needs no `--joint-units` for it; joint names are the
joint states' (`--joint-names` picks and orders them). Camera features are named after the graph's
cameras, or `--camera-map DATASET:=GRAPH` names them otherwise (e.g. `top:=front`, as another
dataset of the same robot names them).
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from pathlib import Path

import numpy as np

from asyncvla_ros.bags.reader import open_bag
from asyncvla_ros.bags.recording import Recording, load
from asyncvla_ros.bags.types import BagError
from asyncvla_ros.control.joint_space import camera_pair
from asyncvla_ros.data.features import UNITS_KEY


def split_times(path, topic: str) -> list[int]:
    """Log times of every message on `topic` in the bag (episode boundaries); none without a topic."""
    if not topic:
        return []
    reader = open_bag(path)
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise BagError(f"bag {path} has no {topic} (--split-topic); it holds {sorted({c.topic for c in reader.connections})}")
        return sorted(t for _, t, _ in reader.messages(connections=conns))
    finally:
        reader.close()


SPLIT_WAIT_NS = 2_000_000_000  # longest wait after a --split-topic mark for a frame set captured after it


def episodes(rec: Recording, cameras, joint_names, fps: float, splits: list[int], task: str) -> list[dict]:
    """The bag's episodes: {"task", "frames": [(images by camera, state, action)]}."""
    period = int(round(1e9 / fps))
    frames = {cam: sorted(rec.frames[cam], key=lambda f: f.log_ns) for cam in cameras}
    frame_times = {cam: [f.log_ns for f in fs] for cam, fs in frames.items()}
    safe = sorted(rec.safe_commands.values(), key=lambda s: s.log_ns) or sorted(rec.commands.values(), key=lambda s: s.log_ns)
    if not safe:
        raise BagError(f"bag {rec.path} holds no safe_joint_command (nor joint_command): nothing says what the arm was sent")
    safe_times = [s.log_ns for s in safe]
    start = max([fs[0].log_ns for fs in frames.values()] + [rec.states[0].log_ns])
    end = min([fs[-1].log_ns for fs in frames.values()] + [rec.states[-1].log_ns, safe[-1].log_ns])
    instructions = sorted(rec.instructions)
    out, current = [], None
    bounds = [s for s in splits if start < s <= end]
    split_at = None  # the mark of an episode whose first frame set is not yet captured after it
    for t in range(start, end + 1, period):
        while bounds and t >= bounds[0]:
            split_at = bounds.pop(0)  # a later mark before any frame of the last one supersedes it
        shown = {cam: frames[cam][bisect.bisect_right(frame_times[cam], t) - 1] for cam in cameras}
        state = rec.latest_state(t)
        if split_at is not None and min([f.stamp_ns for f in shown.values()] + [state.stamp_ns]) < split_at:
            if t - split_at > SPLIT_WAIT_NS:
                raise BagError(f"bag {rec.path}: for {SPLIT_WAIT_NS / 1e9:g} s after the --split-topic message at bag time "
                               f"{split_at} no camera image and joint state were all captured after it (header stamps); "
                               "a camera stopped, or the stamps use another clock than the bag")
            continue  # a frame set that still shows the last episode's scene or state belongs to neither
        if current is None or split_at is not None:
            said = [text for log_ns, text in instructions if log_ns <= t]
            if not said:  # recorded before the instruction arrived: the first one said during this episode
                said = [text for log_ns, text in instructions if log_ns <= (bounds[0] if bounds else end)][:1]
            current = {"task": said[-1] if said else task, "frames": []}
            out.append(current)
            split_at = None
        i = min(bisect.bisect_left(safe_times, t), len(safe) - 1)  # the first command after the frame
        action = rec.state_positions(safe[i], joint_names)
        current["frames"].append(({cam: f.rgb for cam, f in shown.items()}, rec.state_positions(state, joint_names), action))
    if any(not ep["task"] for ep in out):
        raise BagError(f"bag {rec.path}: an episode starts before any instruction was recorded; give --task")
    return [ep for ep in out if ep["frames"]]


UNIT_SCALE = {"rad": 1.0, "deg": 180.0 / np.pi}  # --units: dataset value per graph radian


def features(keys, shape, joint_names, video: bool) -> dict:
    kind = "video" if video else "image"
    image = {"dtype": kind, "shape": tuple(shape), "names": ["height", "width", "channels"]}
    joints = {"dtype": "float32", "shape": (len(joint_names),), "names": list(joint_names)}
    return {**{f"observation.images.{k}": dict(image) for k in keys}, "observation.state": dict(joints), "action": dict(joints)}


def dataset_camera_names(cameras, camera_map=()) -> dict[str, str]:
    """graph camera -> its name in the dataset, from `DATASET:=GRAPH` pairs (unmapped cameras keep theirs)."""
    names = {}
    for pair in camera_map:
        dataset_name, graph_name = camera_pair(pair, "--camera-map", "DATASET_CAMERA")
        if graph_name not in cameras:
            raise ValueError(f"--camera-map entry {pair!r}: {graph_name!r} is not one of the cameras {list(cameras)}")
        names[graph_name] = dataset_name
    out = {c: names.get(c, c) for c in cameras}
    if len(set(out.values())) != len(out):
        raise ValueError(f"--camera-map gives two cameras one name: {out}")
    return out


def convert(bags, out: Path, cameras=("front", "wrist"), fps: float = 10.0, split_topic: str = "", task: str = "",
            joint_names=(), video: bool = True, robot_type: str = "ros2_graph", repo_id: str = "local/ros2_demos",
            units: str = "rad", camera_map=()) -> dict:
    """Write the episodes of `bags` to a new LeRobotDataset in `out`. Returns a summary.

    Raises:
        BagError: a bag that cannot be read or lacks what a frame needs.
        ValueError: `out` exists, or bad options.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from asyncvla_ros.data.load import VIDEO_BACKEND

    out = Path(out)
    if out.exists():
        raise ValueError(f"--out {out} exists; give a new directory")
    if not fps > 0:
        raise ValueError(f"--fps must be > 0, got {fps}")
    if units not in UNIT_SCALE:
        raise ValueError(f"--units {units!r}: choose one of {list(UNIT_SCALE)}")
    keys = dataset_camera_names(cameras, camera_map)
    scale = np.float32(UNIT_SCALE[units])
    loaded = []
    for path in bags:  # every bag read and checked before anything is written
        rec = load(path, cameras)
        names = tuple(joint_names) or tuple(rec.states[0].names)
        loaded.append((rec, episodes(rec, cameras, names, fps, split_times(path, split_topic), task), names))
    names = loaded[0][2]
    if any(n != names for _, _, n in loaded):
        raise BagError(f"the bags' joint names differ: {[n for _, _, n in loaded]}; give --joint-names")
    shapes = {im.shape for _, eps, _ in loaded for ep in eps for images, _, _ in ep["frames"] for im in images.values()}
    if len(shapes) != 1:
        raise BagError(f"the bags' images are not all one size: {sorted(shapes)}")
    dataset = LeRobotDataset.create(repo_id=repo_id, root=out, fps=int(round(fps)), robot_type=robot_type,
                                    features=features(keys.values(), shapes.pop(), names, video), use_videos=video,
                                    video_backend=VIDEO_BACKEND)
    count = frames = 0
    try:
        for _, eps, _ in loaded:
            for ep in eps:
                for images, state, action in ep["frames"]:
                    dataset.add_frame({"task": ep["task"], "observation.state": state.astype(np.float32) * scale,
                                       "action": action.astype(np.float32) * scale,
                                       **{f"observation.images.{keys[c]}": images[c] for c in cameras}})
                dataset.save_episode()
                count, frames = count + 1, frames + len(ep["frames"])
    finally:
        dataset.finalize()
    info_path = out / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info[UNITS_KEY] = units
    info_path.write_text(json.dumps(info, indent=4))
    return {"out": str(out), "episodes": count, "frames": frames, "joint_names": list(names), "units": units,
            "cameras": list(keys.values()),
            "storage": "video" if video else "images", "bags": [str(b) for b in bags]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bag-to-dataset", description=__doc__.splitlines()[0])
    parser.add_argument("bags", nargs="+", help="bag directories, one or more episodes each")
    parser.add_argument("--out", required=True, help="new LeRobotDataset directory")
    parser.add_argument("--cameras", nargs="+", default=["front", "wrist"], help="camera names (topics /<name>/image_raw)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second of bag time")
    parser.add_argument("--split-topic", default="", help="a message on this topic starts a new episode")
    parser.add_argument("--task", default="", help="task text where the bag recorded no instruction")
    parser.add_argument("--joint-names", nargs="+", default=[], help="joints to keep, in this order (default: the joint states')")
    parser.add_argument("--images", action="store_true", help="store PNG frames instead of video")
    parser.add_argument("--robot-type", default="ros2_graph", help="LeRobot's robot_type label")
    parser.add_argument("--units", choices=sorted(UNIT_SCALE), default="rad",
                        help="units of the dataset's joint values (every joint): the graph's radians, or degrees")
    parser.add_argument("--camera-map", nargs="+", default=[], metavar="DATASET:=GRAPH",
                        help="name a graph camera otherwise in the dataset, e.g. top:=front")
    opts = parser.parse_args(argv)
    report = convert(opts.bags, Path(opts.out), tuple(opts.cameras), opts.fps, opts.split_topic, opts.task,
                     tuple(opts.joint_names), not opts.images, opts.robot_type, units=opts.units, camera_map=opts.camera_map)
    print(json.dumps(report, indent=2), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
