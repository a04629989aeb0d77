"""Decode a LeRobot video dataset's frames with PyAV.

LeRobot 0.4 decodes videos with torchcodec or through `torchvision.io.VideoReader`. Neither works with
this environment's pinned torch 2.14 / torchvision 0.29: torchcodec has no build for it here, and
torchvision 0.29 has no VideoReader any more, so `LeRobotDataset[i]` on a video dataset fails with an
AttributeError. PyAV (the `av` wheel in the lock, with its own FFmpeg: AV1 through libdav1d, H.264,
HEVC) has no such tie to torch. `PyAVDecoder` does what LeRobot's torchvision path did, with PyAV
directly: seek to the key frame before the first requested time, decode forward to the last, and take
for each requested time the nearest frame, which must lie within the dataset's tolerance.

A decoder keeps the last few files open (a dataset stores many episodes in one MP4): the frames of one
sample come from one seek, and the next sample in the same file does not reopen it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch


class VideoDecodeError(ValueError):
    """A video that cannot be decoded at the requested times; the message names the file."""


class PyAVDecoder:
    """Args: open_files: how many video files stay open (least recently used closed first)."""

    def __init__(self, open_files: int = 8) -> None:
        self.open_files = open_files
        self._containers: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0  # frames decoded (the requested ones and those between them and the key frame)

    def _container(self, path: str):
        import av

        container = self._containers.pop(path, None)
        if container is None:
            try:
                container = av.open(path)
            except (av.error.FFmpegError, OSError) as err:
                raise VideoDecodeError(f"{path}: cannot open the video: {err}") from err
            if not container.streams.video:
                container.close()
                raise VideoDecodeError(f"{path}: no video stream (a truncated or foreign file?)")
            container.streams.video[0].thread_type = "AUTO"
        self._containers[path] = container
        while len(self._containers) > self.open_files:
            self._containers.popitem(last=False)[1].close()
        return container

    def frames(self, path: str | Path, timestamps: list[float], tolerance_s: float) -> torch.Tensor:
        """The frames nearest to `timestamps` (s, from the file's start), as LeRobot returns them:
        (N, C, H, W) float32 in [0, 1].

        Raises:
            VideoDecodeError: the file cannot be opened or decoded, or a requested time has no frame
                within `tolerance_s`.
        """
        import av

        path = str(path)
        first, last = min(timestamps), max(timestamps)
        with self._lock:
            container = self._container(path)
            stream = container.streams.video[0]
            loaded: list[np.ndarray] = []
            times: list[float] = []
            try:
                # Seek lands on the key frame at or before `first`; decode forward to `last`.
                container.seek(max(0, int(first / float(stream.time_base))), stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * stream.time_base)
                    if t < first - tolerance_s:
                        continue
                    loaded.append(frame.to_ndarray(format="rgb24"))
                    times.append(t)
                    self.decoded += 1
                    if t >= last:
                        break
            except av.error.FFmpegError as err:
                self._containers.pop(path, None)
                container.close()
                raise VideoDecodeError(f"{path}: decoding failed near {first:.3f} s: {err}") from err
        if not times:
            raise VideoDecodeError(f"{path}: no frame at or after {first:.4f} s")
        loaded_t = np.asarray(times)
        nearest = np.abs(np.asarray(timestamps)[:, None] - loaded_t[None, :]).argmin(axis=1)
        off = np.abs(loaded_t[nearest] - np.asarray(timestamps))
        if (off > tolerance_s).any():
            bad = [(round(q, 4), round(float(loaded_t[i]), 4)) for q, i, o in zip(timestamps, nearest, off) if o > tolerance_s]
            raise VideoDecodeError(f"{path}: requested times have no frame within {tolerance_s} s (requested, nearest): {bad}")
        stacked = torch.from_numpy(np.stack([loaded[i] for i in nearest]))  # (N, H, W, C) uint8
        return stacked.permute(0, 3, 1, 2).to(torch.float32) / 255.0

    def close(self) -> None:
        with self._lock:
            for container in self._containers.values():
                container.close()
            self._containers.clear()


def pyav_dataset_class():
    """LeRobotDataset whose video frames come from `PyAVDecoder` (one per dataset object, so DataLoader
    worker processes each open their own files)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    class PyAVLeRobotDataset(LeRobotDataset):
        def _query_videos(self, query_timestamps: dict[str, list[float]], ep_idx: int) -> dict[str, torch.Tensor]:
            decoder = self.__dict__.get("_pyav_decoder")
            if decoder is None:
                decoder = self.__dict__["_pyav_decoder"] = PyAVDecoder()
            ep = self.meta.episodes[ep_idx]
            item = {}
            for key, query in query_timestamps.items():
                start = ep[f"videos/{key}/from_timestamp"]
                path = self.root / self.meta.get_video_file_path(ep_idx, key)
                item[key] = decoder.frames(path, [start + t for t in query], self.tolerance_s).squeeze(0)
            return item

        def __getstate__(self):  # a decoder's open files do not travel to worker processes
            state = self.__dict__.copy()
            state.pop("_pyav_decoder", None)
            return state

    return PyAVLeRobotDataset
