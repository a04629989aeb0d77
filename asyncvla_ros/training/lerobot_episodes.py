"""Episodes from any LeRobotDataset: the state/action columns read at once, images on demand."""

from __future__ import annotations

import numpy as np

from asyncvla_ros.imaging import resize_rgb
from asyncvla_ros.training.samples import Episode

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"  # optional: privileged scene state (auxiliary target)
ACTION_KEY = "action"


def camera_names(dataset) -> list[str]:
    """The dataset's cameras: the <name> of every observation.images.<name> feature, in feature order."""
    return [key[len(IMAGE_PREFIX):] for key in dataset.meta.features if key.startswith(IMAGE_PREFIX)]


def required_features(cameras) -> list[str]:
    return [IMAGE_PREFIX + c for c in cameras] + [STATE_KEY, ACTION_KEY, "task"]


def _to_rgb(image) -> np.ndarray:
    """LeRobot's (3, H, W) float image in [0, 1] -> (H, W, 3) uint8 (exact for PNG-stored frames)."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def episodes_from_lerobot(dataset, cameras, image_size_hw: tuple[int, int]) -> list[Episode]:
    """One `Episode` per dataset episode, images resized (centre crop + bilinear) to `image_size_hw`."""
    has_env = ENV_STATE_KEY in dataset.meta.features
    names = ["episode_index", STATE_KEY, ACTION_KEY, "task_index"] + ([ENV_STATE_KEY] if has_env else [])
    columns = dataset.hf_dataset.select_columns(names).with_format("numpy")[:]
    task_of = {int(row.task_index): task for task, row in dataset.meta.tasks.iterrows()}
    episode_index = np.asarray(columns["episode_index"])
    states = np.asarray(columns[STATE_KEY], dtype=np.float32)
    actions = np.asarray(columns[ACTION_KEY], dtype=np.float32)
    tasks = np.asarray(columns["task_index"])
    env_states = np.asarray(columns[ENV_STATE_KEY], dtype=np.float32) if has_env else None
    keys = [IMAGE_PREFIX + c for c in cameras]

    def frames(rows: np.ndarray):
        def load(t: int) -> list[np.ndarray]:
            item = dataset[int(rows[t])]
            return [resize_rgb(_to_rgb(item[k]), image_size_hw) for k in keys]

        return load

    episodes = []
    for ep in np.unique(episode_index):
        rows = np.flatnonzero(episode_index == ep)  # dataset rows of this episode, in frame order
        episodes.append(Episode(states[rows], actions[rows], task_of[int(tasks[rows[0]])], frames(rows),
                                env_states[rows] if has_env else None, fps=float(dataset.meta.fps)))
    return episodes
