"""The features of the sim demonstration datasets, and the check a trainer runs before reading one.

No LeRobot import here: the names and specs are plain data, so a config can be validated (and this
module imported) without the dataset stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# LeRobot's repo_id for the demonstrations; only a name here, the data never leaves the local folder.
DEFAULT_REPO_ID = "local/asyncvla_sim_pick_place"

FRONT_IMAGE = "observation.images.front"
WRIST_IMAGE = "observation.images.wrist"
STATE = "observation.state"
# LeRobot's name for privileged simulator state. Optional for training (an auxiliary target, see
# TrainConfig.env_state_loss_weight); never an input of the policy.
ENV_STATE = "observation.environment_state"
ACTION = "action"
# Not a stored column: LeRobot keeps the task strings in meta/tasks.parquet and a task_index per frame,
# and a loaded frame carries the string under "task".
TASK = "task"

# Sim camera name -> dataset key.
CAMERA_KEYS = {"front": FRONT_IMAGE, "wrist": WRIST_IMAGE}

REQUIRED_FEATURES: tuple[str, ...] = (FRONT_IMAGE, WRIST_IMAGE, STATE, ACTION, TASK)


class MissingFeatureError(ValueError):
    """A dataset lacks a feature its reader needs; the message names it and lists what is there."""


# meta/info.json key naming the units of observation.state and action ("rad"), for datasets this package
# writes from other sources than the sim (`asyncvla-ros bag-to-dataset`): LeRobot itself records none.
UNITS_KEY = "asyncvla_joint_units"


def demo_features(image_size_px: int, joint_names: Sequence[str], env_state_names: Sequence[str] = ()) -> dict[str, dict]:
    """LeRobot feature specs of a demonstration frame (LeRobot adds index, timestamp and the like).

    Args:
        image_size_px: side of the square RGB images, px.
        joint_names: joint order of the state and action vectors.
        env_state_names: the privileged scene state's components; empty = no such feature.

    Returns:
        ``{key: {"dtype", "shape", "names"}}`` as ``LeRobotDataset.create(features=...)`` takes it.
    """
    image = {"dtype": "image", "shape": (image_size_px, image_size_px, 3), "names": ["height", "width", "channels"]}
    joints = {"dtype": "float32", "shape": (len(joint_names),), "names": list(joint_names)}
    features = {
        FRONT_IMAGE: dict(image),
        WRIST_IMAGE: dict(image),
        STATE: dict(joints),  # measured joint positions, rad
        ACTION: dict(joints),  # joint-position targets commanded at this frame, rad
    }
    if env_state_names:
        features[ENV_STATE] = {"dtype": "float32", "shape": (len(env_state_names),), "names": list(env_state_names)}
    return features


def available_features(dataset) -> list[str]:
    """Feature names of a LeRobotDataset (or its metadata), with ``"task"`` when it carries task strings."""
    meta = getattr(dataset, "meta", dataset)
    names = set(meta.features)
    tasks = getattr(meta, "tasks", None)
    if "task_index" in names and tasks is not None and len(tasks) > 0:
        names.add(TASK)
    return sorted(names)


def check_features(dataset, required: Iterable[str] = REQUIRED_FEATURES) -> None:
    """Raise unless ``dataset`` has every feature in ``required``.

    Args:
        dataset: a ``LeRobotDataset`` or its ``meta`` (anything with ``.features`` and ``.tasks``).
        required: feature names; ``"task"`` means per-frame task strings.

    Raises:
        MissingFeatureError: naming each missing feature and listing the dataset's features.
    """
    have = available_features(dataset)
    missing = [name for name in required if name not in have]
    if missing:
        root = getattr(getattr(dataset, "meta", dataset), "root", None)
        where = f" at {root}" if root is not None else ""
        raise MissingFeatureError(
            f"dataset{where} lacks required feature(s) {', '.join(repr(m) for m in missing)}. A robot's own dataset needs its "
            f"joint states as observation.state, its joint commands as action, one observation.images.<camera> per camera "
            f"and a task per episode: `lerobot-record` writes these, `asyncvla-ros bag-to-dataset` too from bags recorded "
            f"through the graph, and `asyncvla-ros demos` from the sim; it has: {', '.join(have)}."
        )

