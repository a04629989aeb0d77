"""sensor_msgs/Image <-> RGB arrays without cv_bridge (the index's cv_bridge breaks on NumPy 2)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from asyncvla_ros.imaging import raw_image_to_rgb
from asyncvla_ros.nodes.conversions import MessageError, to_time


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an rgb8/bgr8/mono8 image, honouring the row step.

    Raises:
        MessageError: another encoding, or data that doesn't match width/height/step.
    """
    try:
        return raw_image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data))
    except ValueError as err:
        raise MessageError(str(err)) from err


def rgb_to_image(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg
