"""Headless camera rendering on one worker thread that owns the OpenGL context.

An EGL or OSMesa context can be current in only one thread at a time, and MuJoCo's ``Renderer``
makes its context current in the thread that creates, uses and closes it. Renders may be asked for
from several threads (the driver's step, a camera node), so every OpenGL call goes through a single
worker thread: callers hand it a pose snapshot and wait for the pixels. The worker poses its own
``MjData`` from the snapshot, so rendering never touches the physics ``MjData``.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.sim._mujoco import mujoco

logger = logging.getLogger(__name__)

MAX_POSE_ABS = 1000.0  # no pose of the scene has a coordinate (m) or joint angle (rad) beyond this


@dataclass(frozen=True)
class PoseSnapshot:
    """What a render needs from the physics state, copied after a reset or step."""

    time_s: float
    qpos: np.ndarray
    mocap_pos: np.ndarray
    mocap_quat: np.ndarray

    @classmethod
    def of(cls, data: mujoco.MjData) -> PoseSnapshot:
        return cls(float(data.time), data.qpos.copy(), data.mocap_pos.copy(), data.mocap_quat.copy())

    def apply_to(self, data: mujoco.MjData) -> None:
        """Put `data` in this pose (positions, mocap bodies, time); the caller recomputes what it needs."""
        data.qpos[:] = self.qpos
        data.mocap_pos[:] = self.mocap_pos
        data.mocap_quat[:] = self.mocap_quat
        data.time = self.time_s

    def check_fits(self, model: mujoco.MjModel) -> None:
        """ValueError unless this is a pose of `model`'s scene (e.g. one sent by another process): the
        scene's sizes, finite values, and positions (m) and angles (rad) within MAX_POSE_ABS."""
        if self.qpos.shape != (model.nq,) or self.mocap_pos.shape != (model.nmocap, 3) or self.mocap_quat.shape != (model.nmocap, 4):
            raise ValueError(f"snapshot does not fit this scene: qpos {self.qpos.shape} (want {(model.nq,)}), "
                             f"mocap {self.mocap_pos.shape} (want {(model.nmocap, 3)})")
        for name, values in (("time", np.asarray(self.time_s)), ("qpos", self.qpos), ("mocap_pos", self.mocap_pos),
                             ("mocap_quat", self.mocap_quat)):
            if not np.isfinite(values).all():
                raise ValueError(f"snapshot {name} contains NaN or inf")
            if name != "time" and np.abs(values).max(initial=0.0) > MAX_POSE_ABS:
                raise ValueError(f"snapshot {name} reaches {np.abs(values).max():.3g}, beyond {MAX_POSE_ABS:g} (m or rad): not a pose of this scene")


class _WorkerState:
    """Lives on the worker thread only: the renderer (GL context) and the posed ``MjData``."""

    def __init__(self, model: mujoco.MjModel, size_px: int):
        self.model = model
        self.size_px = size_px
        self.data = mujoco.MjData(model)
        self.renderer: mujoco.Renderer | None = None

    def render(self, cameras: tuple[str, ...], snapshot: PoseSnapshot) -> dict[str, np.ndarray]:
        if self.renderer is None:
            self.renderer = mujoco.Renderer(self.model, self.size_px, self.size_px)
            flags = self.renderer.scene.flags
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                         mujoco.mjtRndFlag.mjRND_SKYBOX):
                flags[flag] = False
        snapshot.apply_to(self.data)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        images = {}
        for camera in cameras:
            self.renderer.update_scene(self.data, camera=camera)
            images[camera] = self.renderer.render()
        return images

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


def _shutdown(executor: ThreadPoolExecutor, state: _WorkerState) -> None:
    """Close the renderer on its own thread, then stop the thread. Safe to call twice."""
    try:
        executor.submit(state.close).result()
    except RuntimeError:  # executor already shut down
        pass
    executor.shutdown(wait=True)


class RenderWorker:
    """Renders cameras of ``model`` at ``size_px`` x ``size_px`` on a private thread.

    Thread-safe: any thread may call :meth:`render`; requests run one at a time, in order.
    """

    def __init__(self, model: mujoco.MjModel, size_px: int):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-render")
        self._state = _WorkerState(model, size_px)
        # Closes the GL context on its own thread even if close() is never called (at exit at the
        # latest); MuJoCo's own finalizer would try from the wrong thread and fail.
        self._finalizer = weakref.finalize(self, _shutdown, self._executor, self._state)

    def render(self, cameras: tuple[str, ...], snapshot: PoseSnapshot) -> dict[str, np.ndarray]:
        """Images (H, W, 3) uint8 RGB of ``cameras`` at ``snapshot``."""
        return self._executor.submit(self._state.render, cameras, snapshot).result()

    def close(self) -> None:
        """Release the GL context and stop the thread."""
        self._finalizer()
