"""Render the simulated world from pose snapshots made elsewhere, e.g. by the driver in another process.

The scene is compiled from the same description as `SimArm`'s, so a snapshot's qpos and mocap poses
(cube, arm, target areas) mean the same thing here; a snapshot of another model is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asyncvla_ros.sim.gl_backend import select_gl_backend
from asyncvla_ros.sim.render import PoseSnapshot, RenderWorker
from asyncvla_ros.sim.task import CAMERA_NAMES


class WorldView:
    """Args: image size (px), headless GL backend ("auto", "egl", "osmesa"), mesh face budget, mesh cache dir."""

    def __init__(self, image_size_px: int = 224, render_backend: str = "auto", mesh_face_budget: int = 2000, cache_dir: str = "") -> None:
        select_gl_backend(render_backend)  # before MuJoCo is imported
        from asyncvla_ros.sim.scene import build_spec

        cache = Path(cache_dir).expanduser() if cache_dir else None
        self.model = build_spec(mesh_face_budget, cache, image_size_px).compile()
        self._worker = RenderWorker(self.model, image_size_px)

    def render(self, camera: str, snapshot: PoseSnapshot) -> np.ndarray:
        """(H, W, 3) uint8 RGB of `camera` at `snapshot`."""
        if camera not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {camera!r}, choose from {CAMERA_NAMES}")
        snapshot.check_fits(self.model)
        return self._worker.render((camera,), snapshot)[camera]

    def close(self) -> None:
        self._worker.close()
