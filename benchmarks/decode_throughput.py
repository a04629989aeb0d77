"""Benchmark reading a LeRobotDataset stored as video (decoded by PyAV, data/video.py) against the same
frames stored as PNG images: rows per second in order and shuffled, and the codec's error. Prints one
JSON object.

The frames are the sim's: scripted-expert episodes rendered at --size px, front and wrist cameras, both
datasets written with LeRobot's own API (`LeRobotDataset.create`, `add_frame`, `save_episode`,
`finalize`; video is LeRobot's default, AV1), then read through `asyncvla_ros.data.load.load_dataset`
with one torch thread, as a training data worker reads them.

    python benchmarks/decode_throughput.py [--episodes 4] [--size 224] [--rows 400] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

CAMERAS = ("front", "wrist")


def write_dataset(root: Path, episodes, fps: int, use_videos: bool) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.utils import hw_to_dataset_features

    from asyncvla_ros.sim.task import JOINT_NAMES

    size = episodes[0].frames(0)[0].shape
    joints = {f"{j}.pos": float for j in JOINT_NAMES}
    features = {**hw_to_dataset_features(joints, "action", use_videos),
                **hw_to_dataset_features({**joints, **{c: size for c in CAMERAS}}, "observation", use_videos)}
    ds = LeRobotDataset.create(repo_id=f"local/{root.name}", fps=fps, features=features, root=root,
                               robot_type="so101_sim", use_videos=use_videos)
    for ep in episodes:
        for t in range(len(ep.states)):
            frame = {"task": ep.task, "action": ep.actions[t].astype(np.float32),
                     "observation.state": ep.states[t].astype(np.float32)}
            frame.update({f"observation.images.{c}": img for c, img in zip(CAMERAS, ep.frames(t))})
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()


def read_rate(ds, rows: list[int]) -> tuple[float, dict]:
    """Rows per second over `rows`, and the images read (row -> camera -> HxWx3 float in 0-255)."""
    images = {}
    t0 = time.perf_counter()
    for row in rows:
        item = ds[row]
        images[row] = {c: item[f"observation.images.{c}"] for c in CAMERAS}
    seconds = time.perf_counter() - t0
    return len(rows) / seconds, {r: {c: (v.permute(1, 2, 0).numpy() * 255.0) for c, v in cams.items()} for r, cams in images.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="sim expert episodes written")
    parser.add_argument("--seed", type=int, default=9000, help="seed of the first episode")
    parser.add_argument("--size", type=int, default=224, help="image side, px")
    parser.add_argument("--fps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=400, help="rows read per order (at most the dataset's)")
    parser.add_argument("--out", default="", help="where to write the two datasets (default: a temporary folder)")
    args = parser.parse_args()

    import torch
    # LeRobot (and through it torchvision and triton) before the sim renders: triton's own LLVM, loaded
    # after the software OpenGL renderer's, crashes the process.
    import lerobot.datasets.lerobot_dataset  # noqa: F401

    from asyncvla_ros.data.load import load_dataset
    from asyncvla_ros.training.sim_episodes import sim_episodes

    torch.set_num_threads(1)
    episodes, _ = sim_episodes(args.episodes, args.seed, image_size_px=args.size, fps=args.fps)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
                  "episodes": len(episodes), "size_px": args.size, "cameras": list(CAMERAS)}
        read = {}
        for storage, use_videos in (("video", True), ("images", False)):
            root = base / f"decode_{storage}"
            t0 = time.perf_counter()
            write_dataset(root, episodes, args.fps, use_videos)
            written_s = time.perf_counter() - t0
            ds = load_dataset(root, required=["observation.state", "action"])
            n = min(args.rows, len(ds))
            in_order = list(range(n))
            shuffled = [int(r) for r in np.random.default_rng(0).permutation(len(ds))[:n]]
            rate_cold, _ = read_rate(ds, in_order)  # the first pass opens the files and warms the caches
            rate_in_order, images = read_rate(ds, in_order)
            rate_shuffled, _ = read_rate(ds, shuffled)
            read[storage] = images
            report[storage] = {"rows_per_s_first_pass": round(rate_cold, 1), "rows_per_s_in_order": round(rate_in_order, 1),
                               "rows_per_s_shuffled": round(rate_shuffled, 1),
                               "rows_timed": n, "write_s": round(written_s, 1),
                               "bytes_on_disk": sum(f.stat().st_size for f in root.rglob("*") if f.is_file())}
        rows = sorted(set(read["video"]) & set(read["images"]))
        errors = [np.abs(read["video"][r][c] - read["images"][r][c]).mean() for r in rows for c in CAMERAS]
        report["video_vs_images_mean_abs_error_255"] = round(float(np.mean(errors)), 2)
        report["video_vs_images_max_frame_error_255"] = round(float(np.max(errors)), 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
