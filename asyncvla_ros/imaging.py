"""Image helpers shared by the nodes and the trainer (numpy + PIL, no ROS, no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage


def resize_rgb(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the target aspect ratio, then resize (bilinear) to (H, W); a no-op at the right size."""
    h, w = rgb.shape[:2]
    th, tw = size_hw
    if (h, w) == (th, tw):
        return rgb
    scale = min(h / th, w / tw)
    ch, cw = int(round(th * scale)), int(round(tw * scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = rgb[top : top + ch, left : left + cw]
    return np.asarray(PILImage.fromarray(crop).resize((tw, th), PILImage.BILINEAR))


IMAGE_ENCODINGS = ("rgb8", "bgr8", "mono8")


def raw_image_to_rgb(encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """(H, W, 3) uint8 RGB from the fields of a sensor_msgs/Image (rgb8, bgr8 or mono8), honouring the
    row step. `data` is anything numpy reads as bytes (the message's bytes, array or list).

    Shared by the live nodes and the bag re-run, so both decode a frame identically.

    Raises:
        ValueError: another encoding, or data that doesn't match width/height/step.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"image encoding {encoding!r} not supported; use one of {IMAGE_ENCODINGS}")
    channels = 1 if encoding == "mono8" else 3
    h, w, step = int(height), int(width), int(step)
    pixels = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data, dtype=np.uint8).reshape(-1)
    if h == 0 or w == 0 or step < w * channels or pixels.size != h * step:
        raise ValueError(f"image {w}x{h} step {step} {encoding} has {pixels.size} bytes of data")
    pixels = pixels.reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    return pixels[:, :, ::-1].copy() if encoding == "bgr8" else pixels.copy()


def camera_frame_to_rgb(frame) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a frame as OpenCV's VideoCapture.read() returns it: BGR (H, W, 3), BGRA
    (H, W, 4) or grey (H, W) / (H, W, 1), uint8. A device or stream can return any of these.

    Raises:
        ValueError: no frame, an empty one, another dtype (e.g. a 16-bit depth stream) or channel count.
    """
    if frame is None:
        raise ValueError("the camera returned no frame")
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"camera frame of {frame.dtype}; 8-bit colour or grey frames only")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"camera frame of shape {frame.shape}; (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) only")
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame[:, :, 2::-1])  # BGR(A) -> RGB
