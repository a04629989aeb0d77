"""Open a local demonstration dataset with LeRobot, never touching the network, and check its features."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from asyncvla_ros.data.features import DEFAULT_REPO_ID, REQUIRED_FEATURES, check_features


# torchcodec is not installed (see requirements/env.in) and LeRobot's "pyav" backend needs torchvision's
# VideoReader, which torchvision 0.29 no longer has: data/video.py decodes with PyAV itself. Naming the
# backend spares LeRobot's torchcodec probe and its warning.
VIDEO_BACKEND = "pyav"


class DatasetNotFoundError(FileNotFoundError):
    """No complete LeRobot dataset in the folder given (and none is ever fetched from the hub)."""


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face Hub offline mode (``HF_HUB_OFFLINE=1``) for the duration of the block.

    The variable alone is not enough once ``huggingface_hub`` is imported: it reads it at import into
    ``huggingface_hub.constants.HF_HUB_OFFLINE``, which every request checks, so that is set too. Both
    are restored afterwards.
    """
    previous_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants as hub_constants

    previous_constant = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous_constant
        if previous_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous_env


def load_dataset(
    root: str | Path,
    repo_id: str = DEFAULT_REPO_ID,
    required: Iterable[str] = REQUIRED_FEATURES,
    **kwargs,
):
    """Open the LeRobotDataset in ``root`` (offline) and check that it has the ``required`` features.

    Args:
        root: the dataset folder, as written by :func:`asyncvla_ros.data.record_demos`.
        repo_id: LeRobot's name for it; only a label for a local dataset.
        required: feature names the caller reads (``"task"``: per-frame task strings).
        **kwargs: passed to ``LeRobotDataset`` (``episodes``, ``delta_timestamps``, ...).

    Returns:
        The ``LeRobotDataset`` (a subclass whose video frames PyAV decodes, data/video.py).

    Raises:
        DatasetNotFoundError: ``root`` holds no complete LeRobot dataset.
        MissingFeatureError: a required feature is absent (named, with the features present listed).
    """
    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        raise DatasetNotFoundError(
            f"{root} holds no LeRobot dataset (no meta/info.json); write one with `lerobot-record`, with "
            f"`asyncvla-ros bag-to-dataset BAG... --out {root}` from bags recorded through the graph, or with "
            f"`asyncvla-ros demos --out {root} --episodes N` from the sim"
        )
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    from asyncvla_ros.data.video import pyav_dataset_class

    kwargs.setdefault("video_backend", VIDEO_BACKEND)
    with hub_offline():
        try:
            dataset = pyav_dataset_class()(repo_id, root=root, **kwargs)
        # A local dataset with files missing makes LeRobot fall back to downloading them.
        except (OfflineModeIsEnabled, LocalEntryNotFoundError, HfHubHTTPError) as exc:
            raise DatasetNotFoundError(
                f"{root} holds an incomplete LeRobot dataset (LeRobot wanted to fetch the rest from the "
                f"hub: {exc}); was recording interrupted before finalize()? Record it again"
            ) from exc
    check_features(dataset, required)
    return dataset
