"""Demonstration datasets: scripted-expert episodes from the embedded sim, stored as local LeRobotDatasets.

No rclpy. The names below load on first use, so importing the package (or
``asyncvla_ros.data.features``) costs neither LeRobot nor MuJoCo.

Typical use::

    from asyncvla_ros.data import record_demos, load_dataset
    report = record_demos("demos/pick_place", episodes=20, seed=0, image_size_px=112)
    dataset = load_dataset("demos/pick_place")  # a lerobot LeRobotDataset, opened offline
    frame = dataset[0]  # observation.images.front/wrist (3, H, W) float in [0, 1],
                        # observation.state, action (6,) float32 rad, task (the instruction)

or ``asyncvla-ros demos --out demos/pick_place --episodes 20 --seed 0``.
"""

import importlib

_EXPORTS = {
    "record_demos": "asyncvla_ros.data.record",
    "RecordConfig": "asyncvla_ros.data.record",
    "load_dataset": "asyncvla_ros.data.load",
    "DatasetNotFoundError": "asyncvla_ros.data.load",
    "check_features": "asyncvla_ros.data.features",
    "MissingFeatureError": "asyncvla_ros.data.features",
    "REQUIRED_FEATURES": "asyncvla_ros.data.features",
    "DEFAULT_REPO_ID": "asyncvla_ros.data.features",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
