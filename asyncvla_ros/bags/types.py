"""The rosbags typestore: the ROS 2 standard messages plus this package's, from msg/*.msg.

Registering our .msg text (not a hand-written copy) is what puts the real message definitions into
every bag, so `ros2 bag info/play` and independent MCAP readers decode the custom types.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "asyncvla_ros"
STORE = Stores.ROS2_KILTED  # the ROS 2 release the ros-* wheels here come from


class BagError(ValueError):
    """A bag that cannot be read or written as asked; the text says what is wrong and how to fix it.

    A ValueError, so a node built from bad parameters exits with this text (nodes/runner.py).
    """


def message_dir() -> Path:
    """Where our .msg files are: the install space's share/asyncvla_ros/msg, else the source tree's msg/."""
    from asyncvla_ros.launch_graph import share_dir

    for candidate in (share_dir() / "msg", Path(__file__).resolve().parents[2] / "msg"):
        if any(candidate.glob("*.msg")):
            return candidate
    raise BagError("no asyncvla_ros .msg files found (looked in the install space's share/asyncvla_ros/msg "
                   "and the source tree's msg/): build the package with colcon or run from the source tree")


@lru_cache(maxsize=4)
def _typestore(directory: str) -> Typestore:
    store = get_typestore(STORE)
    types = {}
    for path in sorted(Path(directory).glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def typestore(msg_dir: Path | None = None) -> Typestore:
    """The ROS 2 Kilted typestore with every asyncvla_ros message registered (cached per directory)."""
    return _typestore(str((msg_dir or message_dir()).resolve()))
