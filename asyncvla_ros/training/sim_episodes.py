"""Scripted-expert demonstrations from the embedded sim straight into memory.

`asyncvla-ros train --sim-episodes N` trains on these where writing a LeRobotDataset first is not
wanted, e.g. on a GPU machine without the dataset stack: the expert, the frames and the rule "keep only
successful episodes" are those of `asyncvla-ros demos` (one `expert_episode` serves both), so seeds
S..S+N-1 give the same demonstrations either way. Episodes are rendered at the policy's image size and
run in worker processes, each with its own sim. Rendering is most of an episode's cost; with an image
stride N only every Nth step is rendered, and a sample's observation is the newest rendered step
(ChunkSamples), which only a policy trained with time misalignment expects.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.training.samples import Episode

logger = logging.getLogger(__name__)


@dataclass
class ArrayFrames:
    """Step -> one image per camera, from an episode's (ceil(T / stride), cameras, H, W, 3) uint8 array
    of the steps 0, stride, 2 * stride, ..."""

    images: np.ndarray
    stride: int = 1

    def __call__(self, t: int) -> list[np.ndarray]:
        if t % self.stride:
            raise IndexError(f"ArrayFrames: step {t} was not rendered (every {self.stride}th step was)")
        return list(self.images[t // self.stride])


def _make_sim(config) -> tuple:
    """(arm, expert, record config) of one worker, for a RecordConfig."""
    from asyncvla_ros.data.features import CAMERA_KEYS
    from asyncvla_ros.sim import ScriptedExpert, SimArm, SimArmConfig

    arm = SimArm(SimArmConfig(image_size_px=config.image_size_px, control_period_s=1.0 / config.fps, cameras=tuple(CAMERA_KEYS),
                              initial_joint_noise_rad=config.start_noise_rad))
    return arm, ScriptedExpert(arm), config


def _episode_arrays(sim: tuple, seed: int, image_stride: int = 1) -> tuple | None:
    """One expert episode as arrays (states, actions, env states, images of every `image_stride`th
    step, task), or None if it failed."""
    from asyncvla_ros.data.features import ACTION, CAMERA_KEYS, ENV_STATE, STATE, TASK
    from asyncvla_ros.data.record import expert_episode

    arm, expert, config = sim
    frames, success = expert_episode(arm, expert, seed, config, image_stride)
    if not success:
        return None
    stack = lambda key, every=1: np.stack([f[key] for f in frames[::every]])  # noqa: E731
    # (ceil(T / stride), cameras, H, W, 3): only the rendered steps' frames have images
    images = np.stack([stack(key, image_stride) for key in CAMERA_KEYS.values()], axis=1)
    return stack(STATE), stack(ACTION), stack(ENV_STATE), images, frames[0][TASK]


_worker_sim: tuple | None = None  # this worker process's (arm, expert, config)


def _worker_episode(seed: int, config, image_stride: int) -> tuple | None:
    global _worker_sim
    if _worker_sim is None:
        _worker_sim = _make_sim(config)
    return _episode_arrays(_worker_sim, seed, image_stride)


def sim_episodes(count: int, seed: int = 0, image_size_px: int = 112, fps: int = 20, max_duration_s: float = 20.0,
                 workers: int = 0, progress: bool = False, action_noise_std_rad: float = 0.0,
                 start_noise_rad: float = 0.02, displace_fraction: float = 0.0,
                 image_stride: int = 1) -> tuple[list[Episode], list[int]]:
    """Run the expert on seeds seed..seed+count-1; returns (successful episodes in seed order, failed seeds).

    Cameras are the sim's in dataset order (front, wrist); states, actions and the scene state as
    `asyncvla-ros demos` records them (`action_noise_std_rad`, `start_noise_rad`, `displace_fraction`:
    RecordConfig's DART noise, start-pose spread and displaced-cube episodes). `workers` > 0
    runs the episodes in that many processes. `image_stride` N renders every Nth step only.
    """
    if count < 1:
        raise ValueError(f"sim_episodes: count must be >= 1, got {count}")
    from tqdm import tqdm

    from asyncvla_ros.data.record import RecordConfig

    config = RecordConfig(image_size_px=image_size_px, fps=fps, max_duration_s=max_duration_s,
                          action_noise_std_rad=action_noise_std_rad, start_noise_rad=start_noise_rad,
                          displace_fraction=displace_fraction)
    seeds = range(seed, seed + count)
    results: dict[int, tuple | None] = {}
    bar = tqdm(total=count, desc="sim demos", unit="ep", disable=not progress)
    if workers:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_worker_episode, s, config, image_stride): s for s in seeds}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    else:
        sim = _make_sim(config)
        try:
            for s in seeds:
                results[s] = _episode_arrays(sim, s, image_stride)
                bar.update(1)
        finally:
            sim[0].close()
    bar.close()
    episodes, failed = [], []
    for s in seeds:
        if results[s] is None:
            failed.append(s)
            continue
        states, actions, env_states, images, task = results[s]
        episodes.append(Episode(states, actions, task, ArrayFrames(images, image_stride), env_states, fps=fps,
                                image_stride=image_stride))
    if failed:
        logger.warning("the expert failed %d of %d episodes (seeds %s); they are left out", len(failed), count, failed[:20])
    return episodes, failed
