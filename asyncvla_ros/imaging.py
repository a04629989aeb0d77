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
