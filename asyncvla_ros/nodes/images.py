"""sensor_msgs/Image <-> RGB arrays without cv_bridge (the index's cv_bridge breaks on NumPy 2)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from asyncvla_ros.nodes.conversions import MessageError, to_time

ENCODINGS = ("rgb8", "bgr8", "mono8")


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an rgb8/bgr8/mono8 image, honouring the row step.

    Raises:
        MessageError: another encoding, or data that doesn't match width/height/step.
    """
    if msg.encoding not in ENCODINGS:
        raise MessageError(f"image encoding {msg.encoding!r} not supported; use one of {ENCODINGS}")
    channels = 1 if msg.encoding == "mono8" else 3
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0 or step < w * channels or len(msg.data) != h * step:
        raise MessageError(f"image {w}x{h} step {step} {msg.encoding} has {len(msg.data)} bytes of data")
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(h, step)
    pixels = rows[:, : w * channels].reshape(h, w, channels)
    if msg.encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    return pixels[:, :, ::-1].copy() if msg.encoding == "bgr8" else pixels.copy()


def rgb_to_image(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg
