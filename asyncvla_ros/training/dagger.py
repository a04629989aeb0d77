"""DAgger episodes (Ross et al., 2011): a trained policy drives the sim, the scripted expert labels.

Behaviour cloning only shows the policy the expert's own states; its first errors take it to states
no demonstration visits, and from there it does not correct. Here the policy runs the deployed
control path (`evaluation.closed_loop.run_episode`: `ActionLoop`, the safety filter, the semantic
loop) on sim seeds, and at every tick the expert labels the state the policy reached with the chunk
it would command from there (`ScriptedExpert.plan`, a look-ahead in a branch of the physics). The
expert follows the episode along the policy's path, starting over where the policy lost the cube.
The episodes keep what was executed (the policy's commands as the safety filter passed them) for the
history, so that training sees the history the policy will see. `asyncvla-ros train --dagger-policy`
trains on them together with the expert's own demonstrations.

DAgger aggregates: each round trains on the episodes of every earlier round too. `save_episodes`
writes a round's episodes to a folder (`train --dagger-save`) and `load_episodes` reads them back
(`train --dagger-data`, repeatable). LeRobotDataset has no field for a chunk label per step or for an
executed action beside the label, hence a format of our own: one compressed .npz per episode.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from asyncvla_ros.training.samples import Episode
from asyncvla_ros.training.sim_episodes import ArrayFrames

logger = logging.getLogger(__name__)


def rollout(policy, arm, expert, seed: int, config, chunk_len: int) -> tuple:
    """One episode of `policy` on `arm` from `arm.reset(seed)` under `config` (an EvalConfig), labelled by
    `expert` (a ScriptedExpert on the same arm). Returns (states, executed, env states, chunk labels,
    images (T, cameras, H, W, 3) in the sim's dataset camera order, instruction, success)."""
    from asyncvla_ros.data.features import CAMERA_KEYS
    from asyncvla_ros.evaluation.closed_loop import run_episode

    rows: list[tuple] = []

    def on_tick(step, obs, result, target):
        if step == 0:
            expert.reset()  # run_episode has just reset the arm
        labels = expert.plan(chunk_len)
        expert.act()  # the expert's phase follows the episode as the policy drives it
        rows.append((obs.joint_positions_rad.astype(np.float32), np.asarray(target, np.float32), arm.environment_state(),
                     labels.astype(np.float32), np.stack([obs.images[c] for c in CAMERA_KEYS])))

    result = run_episode(policy, arm, seed, config, on_tick=on_tick)
    states, executed, env_states, labels, images = (np.stack(column) for column in zip(*rows))
    return states, executed, env_states, labels, images, result.instruction, result.success


_worker: tuple | None = None  # (policy, arm, expert) of this worker process


def _worker_rollout(model_dir: str, seed: int, config, chunk_len: int) -> tuple:
    global _worker
    if _worker is None:
        import torch

        from asyncvla_ros.data.features import CAMERA_KEYS
        from asyncvla_ros.policy.policy import AsyncVLAPolicy
        from asyncvla_ros.sim import ScriptedExpert, SimArm, SimArmConfig

        torch.set_num_threads(1)
        policy = AsyncVLAPolicy.from_pretrained(model_dir)
        bb = policy.config.backbone
        arm = SimArm(SimArmConfig(image_size_px=bb.image_height_px, cameras=tuple(CAMERA_KEYS)))
        _worker = (policy, arm, ScriptedExpert(arm))
    return rollout(*_worker, seed, config, chunk_len)


def dagger_episodes(model_dir: str, count: int, seed: int, chunk_len: int, max_steps: int = 300, workers: int = 1,
                    progress: bool = False) -> tuple[list[Episode], int]:
    """`count` episodes of the policy in `model_dir` (AsyncVLA mode, synchronous semantics) on seeds
    seed..seed+count-1, labelled by the expert; returns (episodes in seed order, how many the policy
    solved). Every episode is kept, solved or not: the labels are the expert's either way."""
    if count < 1 or chunk_len < 1:
        raise ValueError(f"dagger_episodes: count and chunk_len must be >= 1, got {count}, {chunk_len}")
    from tqdm import tqdm

    from asyncvla_ros.evaluation.closed_loop import STEP_NS, EvalConfig

    config = EvalConfig(max_steps=max_steps)
    seeds = range(seed, seed + count)
    results: dict[int, tuple] = {}
    bar = tqdm(total=count, desc="dagger", unit="ep", disable=not progress)
    with ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_worker_rollout, str(model_dir), s, config, chunk_len): s for s in seeds}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(1)
            bar.set_postfix(solved=sum(r[-1] for r in results.values()))
    bar.close()
    episodes = []
    for s in seeds:
        states, executed, env_states, labels, images, task, _ = results[s]
        # The per-step action is the label's first step: what the expert would command at that state.
        episodes.append(Episode(states, labels[:, 0].copy(), task, ArrayFrames(images), env_states,
                                executed=executed, chunk_labels=labels, fps=1e9 / STEP_NS))
    solved = sum(results[s][-1] for s in seeds)
    logger.info("DAgger: the policy solved %d of %d episodes (seeds %d-%d)", solved, count, seed, seed + count - 1)
    return episodes, solved


EPISODES_FILE = "dagger.json"  # what a saved folder holds: who drove, seeds, episode files, solved
_FIELDS = tuple(f.name for f in dataclasses.fields(Episode) if f.name not in ("task", "frames", "fps"))  # the arrays


def save_episodes(episodes: list[Episode], folder, about: dict) -> Path:
    """Write `episodes` (DAgger's: images in ArrayFrames) to `folder`, one episode_NNNNNN.npz each, and
    `about` (the driving policy, seeds, ...) with the file list in dagger.json, written last: a folder
    without it is an interrupted save and is refused by `load_episodes`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / EPISODES_FILE).exists():
        raise FileExistsError(f"{folder} already holds saved DAgger episodes ({EPISODES_FILE}); choose another folder")
    names = []
    for i, e in enumerate(episodes):
        if not isinstance(e.frames, ArrayFrames):
            raise TypeError(f"save_episodes: episode {i} keeps its images as {type(e.frames).__name__}, not ArrayFrames")
        arrays = {name: getattr(e, name) for name in _FIELDS if getattr(e, name) is not None}
        names.append(f"episode_{i:06d}.npz")
        rate = {} if e.fps is None else {"fps": np.array(e.fps)}
        np.savez_compressed(folder / names[-1], images=e.frames.images, task=np.array(e.task), **rate, **arrays)
    (folder / EPISODES_FILE).write_text(json.dumps({**about, "episodes": names}, indent=2) + "\n")
    return folder


def load_episodes(folder) -> list[Episode]:
    """The episodes `save_episodes` wrote to `folder`. Raises ValueError naming the file that is missing or
    does not hold an episode."""
    folder = Path(folder)
    try:
        names = json.loads((folder / EPISODES_FILE).read_text())["episodes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{folder}: no saved DAgger episodes ({EPISODES_FILE} missing or unreadable: {exc})") from exc
    episodes = []
    for name in names:
        try:
            with np.load(folder / name) as data:
                arrays = {k: data[k] for k in _FIELDS if k in data}
                fps = float(data["fps"]) if "fps" in data else None  # folders saved before the rate was kept: unknown
                episodes.append(Episode(frames=ArrayFrames(data["images"]), task=str(data["task"]), fps=fps, **arrays))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{folder / name}: not a saved DAgger episode ({exc})") from exc
    if not episodes:
        raise ValueError(f"{folder}: {EPISODES_FILE} lists no episodes")
    return episodes
