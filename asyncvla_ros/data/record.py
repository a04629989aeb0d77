"""Record scripted-expert demonstrations from the embedded sim into a local LeRobotDataset.

One frame per control step: the observation the expert acted on (both camera images, the measured
joint positions) and the joint-position targets it commanded, with the episode's instruction as
LeRobot's task. The dataset is LeRobot's own format (v3.0: parquet with PNG-embedded images,
``meta/``), written to a local folder and never pushed anywhere.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asyncvla_ros.data.features import ACTION, CAMERA_KEYS, DEFAULT_REPO_ID, ENV_STATE, STATE, TASK, demo_features
from asyncvla_ros.data.load import VIDEO_BACKEND, hub_offline
from asyncvla_ros.sim.disturbance import displace_cube

logger = logging.getLogger(__name__)

# LeRobot's info.json field; says what produced the data to whoever reads the dataset.
ROBOT_TYPE = "so101_sim"


def _invalid(field: str, requirement: str, value) -> ValueError:
    return ValueError(f"RecordConfig.{field} {requirement}, got {value!r}")


@dataclass
class RecordConfig:
    """What :func:`record_demos` records and how."""

    episodes: int = 10  # episodes attempted; episode i resets the sim with seed + i
    seed: int = 0  # seed of the first episode (each seed draws the instruction and the layout)
    image_size_px: int = 112  # side of both square camera images, px
    fps: int = 20  # control and recording rate, Hz; the sim steps 1/fps s per frame
    max_duration_s: float = 20.0  # an episode not solved within this much sim time fails, s
    # Once the expert has finished, how long the cube may take to come to rest in the area before the
    # episode counts as failed, s (the expert then only holds its pose).
    settle_s: float = 1.0
    repo_id: str = DEFAULT_REPO_ID  # LeRobot's dataset name; local only
    # Threads that PNG-encode the images while the sim steps on; 0 encodes in the recording thread.
    image_writer_threads: int = 2
    render_backend: str = "auto"  # headless OpenGL: "auto", "egl" or "osmesa" (see SimArmConfig)
    # DART-style demonstrations (Laskey et al., 2017): the arm executes the expert's targets plus slowly
    # varying Gaussian noise of this stationary std on the five arm joints (the gripper is left alone),
    # while the dataset records the expert's own targets. The policy then sees states off the expert's
    # path, labelled with the expert's correction. 0 = the expert's plain path.
    action_noise_std_rad: float = 0.0
    # Spread of the arm's start pose (uniform, rad, every joint; SimArmConfig.initial_joint_noise_rad).
    # Wider than the evaluation's 0.02 rad, the demonstrations show the expert's approach from more of
    # the poses a policy's own first moves can lead to.
    start_noise_rad: float = 0.02
    # Displaced demonstrations: in this fraction of episodes (drawn per episode seed) the cube is moved
    # once, to a fresh spawn position (sim/disturbance.py), at a tick drawn from the window below,
    # unless the arm already touches it. The expert starts its grasp over for the new pose, so the
    # policy sees an arm heading for where the cube was, the images showing it elsewhere, and the
    # correction. 0 = none.
    displace_fraction: float = 0.0
    displace_window_s: tuple[float, float] = (0.5, 3.0)  # earliest and latest time of the displacement, s

    def __post_init__(self):
        for name in ("episodes", "seed", "image_size_px", "fps", "image_writer_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise _invalid(name, "must be an int", value)
        if self.episodes < 1:
            raise _invalid("episodes", "must be >= 1", self.episodes)
        if self.seed < 0:
            raise _invalid("seed", "must be >= 0", self.seed)
        if not 16 <= self.image_size_px <= 2048:
            raise _invalid("image_size_px", "must be in [16, 2048] px", self.image_size_px)
        if not 1 <= self.fps <= 1000:
            raise _invalid("fps", "must be in [1, 1000] Hz", self.fps)
        if not math.isfinite(self.max_duration_s) or self.max_duration_s <= 0:
            raise _invalid("max_duration_s", "must be a positive number of seconds", self.max_duration_s)
        if not math.isfinite(self.settle_s) or self.settle_s < 0:
            raise _invalid("settle_s", "must be a non-negative number of seconds", self.settle_s)
        if self.image_writer_threads < 0:
            raise _invalid("image_writer_threads", "must be >= 0", self.image_writer_threads)
        for name in ("action_noise_std_rad", "start_noise_rad"):
            if not math.isfinite(getattr(self, name)) or not 0 <= getattr(self, name) <= 0.5:
                raise _invalid(name, "must be in [0, 0.5] rad", getattr(self, name))
        if not math.isfinite(self.displace_fraction) or not 0 <= self.displace_fraction <= 1:
            raise _invalid("displace_fraction", "must be in [0, 1]", self.displace_fraction)
        window = self.displace_window_s
        if (len(window) != 2 or not all(math.isfinite(w) for w in window)
                or not 1.0 / self.fps <= window[0] <= window[1] <= self.max_duration_s):
            raise _invalid("displace_window_s", "must be (first, last) s with 1/fps <= first <= last <= max_duration_s",
                           window)
        if "/" not in self.repo_id:
            raise _invalid("repo_id", 'must look like "owner/name"', self.repo_id)

    @property
    def max_steps(self) -> int:
        return max(1, round(self.max_duration_s * self.fps))

    @property
    def settle_steps(self) -> int:
        return round(self.settle_s * self.fps)


def record_demos(
    out_dir: str | Path,
    episodes: int,
    seed: int = 0,
    image_size_px: int = 112,
    fps: int = 20,
    *,
    progress: bool = False,
    **options,
) -> dict:
    """Run the scripted expert in the sim and record its successful episodes as a LeRobotDataset.

    Args:
        out_dir: the dataset's root folder; must not exist yet (LeRobot creates it).
        episodes: episodes attempted; episode i resets the sim with ``seed + i``.
        seed: seed of the first episode.
        image_size_px: side of the square camera images, px.
        fps: control and recording rate, Hz.
        progress: show a tqdm progress bar (on stderr).
        **options: the other :class:`RecordConfig` fields (``max_duration_s``, ``settle_s``, ...).

    Returns:
        A JSON-ready report: episodes attempted and saved, successes, failures (with their seeds),
        success rate, frames, seconds, throughput and the dataset's size on disk.

    Raises:
        ValueError: an invalid option (the field is named).
        FileExistsError: ``out_dir`` exists.
    """
    config = RecordConfig(episodes=episodes, seed=seed, image_size_px=image_size_px, fps=fps, **options)
    root = Path(out_dir)
    if root.exists():
        raise FileExistsError(f"{root} already exists: record into a new folder (LeRobot creates it)")

    # Imported here: MuJoCo and the dataset stack (LeRobot, torch) load only when recording.
    from asyncvla_ros.sim import SimArm, SimArmConfig

    arm = SimArm(SimArmConfig(
        image_size_px=config.image_size_px,
        control_period_s=1.0 / config.fps,
        cameras=tuple(CAMERA_KEYS),
        render_backend=config.render_backend,
        initial_joint_noise_rad=config.start_noise_rad,
    ))
    started = time.perf_counter()
    try:
        with hub_offline():  # recording is local: nothing in it may reach the hub
            failed_seeds, frames = _record_episodes(arm, root, config, progress)
    finally:
        arm.close()
    seconds = time.perf_counter() - started
    successes = config.episodes - len(failed_seeds)
    if successes == 0:
        logger.error("no episode succeeded: %s holds an empty dataset", root)
    return {
        "out_dir": str(root),
        "repo_id": config.repo_id,
        "episodes_attempted": config.episodes,
        "episodes_saved": successes,
        "successes": successes,
        "failures": len(failed_seeds),
        "failed_seeds": failed_seeds,
        "success_rate": successes / config.episodes,
        "frames": frames,
        "seconds": round(seconds, 2),
        "episodes_per_min": round(60.0 * config.episodes / seconds, 2),
        "frames_per_s": round(frames / seconds, 1),
        "bytes_on_disk": _bytes_under(root),
        "config": asdict(config),
    }


def _record_episodes(arm, root: Path, config: RecordConfig, progress: bool) -> tuple[list[int], int]:
    """Create the dataset in ``root``, record every episode, finalize; returns (failed seeds, frames)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    from asyncvla_ros.sim import ScriptedExpert, task

    expert = ScriptedExpert(arm)
    dataset = LeRobotDataset.create(
        repo_id=config.repo_id,
        root=root,
        fps=config.fps,
        features=demo_features(config.image_size_px, arm.joint_names, task.ENVIRONMENT_STATE_NAMES),
        robot_type=ROBOT_TYPE,
        use_videos=False,
        image_writer_threads=config.image_writer_threads,
        video_backend=VIDEO_BACKEND,  # unused (no videos); named so LeRobot doesn't probe torchcodec
    )
    failed_seeds, frames = [], 0
    try:
        bar = tqdm(range(config.episodes), desc="demos", unit="ep", disable=not progress)
        for i in bar:
            episode_seed = config.seed + i
            n_frames, success = _record_episode(arm, expert, dataset, episode_seed, config)
            # Only successful episodes are kept: the trainer clones every stored episode, and a
            # failed one (a slipped grasp, a timeout) would teach the failure. Failures are counted
            # and their seeds reported, so a drop in the expert's success rate stays visible.
            if success:
                dataset.save_episode()
                frames += n_frames
            else:
                dataset.clear_episode_buffer()
                failed_seeds.append(episode_seed)
                logger.warning("episode with seed %d failed after %d steps; not saved", episode_seed, n_frames)
            bar.set_postfix(ok=i + 1 - len(failed_seeds), failed=len(failed_seeds))
    finally:
        if dataset.episode_buffer is not None and dataset.episode_buffer["size"] > 0:
            dataset.clear_episode_buffer()  # interrupted mid-episode: drop its images
        dataset.stop_image_writer()
        dataset.finalize()  # closes the parquet writers: without it the files have no footer
        _remove_empty_tree(root / "images")  # LeRobot's emptied per-camera staging folders
    return failed_seeds, frames


def _record_episode(arm, expert, dataset, episode_seed: int, config: RecordConfig) -> tuple[int, bool]:
    """Add one episode's frames to ``dataset``'s episode buffer; returns (frames, success)."""
    frames, success = expert_episode(arm, expert, episode_seed, config)
    for frame in frames:
        dataset.add_frame(frame)
    return len(frames), success


NOISE_TIME_CONSTANT_S = 0.5  # correlation time of the DART noise: deviations the expert must correct


def expert_episode(arm, expert, episode_seed: int, config: RecordConfig, image_stride: int = 1) -> tuple[list[dict], bool]:
    """Run one scripted-expert episode; returns its frames, as the dataset stores them, and success.

    A frame is the observation the expert acted on (one image per camera under its dataset key, the
    measured joint positions, the privileged scene state), the joint-position targets it commanded
    and the instruction. The episode succeeds when the expert is done and the task is solved within
    ``config.settle_steps`` more steps, and fails otherwise or after ``config.max_steps``. With
    ``config.action_noise_std_rad`` the arm executes the targets plus noise drawn from the episode's
    seed (an Ornstein-Uhlenbeck process, time constant ``NOISE_TIME_CONSTANT_S``); frames keep the
    expert's targets. With ``config.displace_fraction`` the episode's seed also decides whether, and at
    which tick, the cube is moved (``RecordConfig.displace_window_s``). With ``image_stride`` N > 1
    only the frames of steps 0, N, 2N, ... have images, and the arm renders nothing at the others; the
    physics, and so the episode, is the same.
    """
    if image_stride < 1:
        raise ValueError(f"expert_episode: image_stride must be >= 1, got {image_stride}")
    observation = arm.reset(seed=episode_seed)
    expert.reset()
    rng = np.random.default_rng([episode_seed, 0xDA27])  # its own stream: the scene draws are unchanged
    keep = math.exp(-1.0 / (config.fps * NOISE_TIME_CONSTANT_S))
    noise = np.zeros(len(arm.joint_names))
    arm_joints = slice(0, len(arm.joint_names) - 1)  # every joint but the gripper, the last one
    lower, upper = arm.joint_limits_rad
    frames, steps_since_done = [], 0
    displace_rng = np.random.default_rng([episode_seed, 0xD15B])
    displace_at = -1  # the tick after which the cube is moved; -1 = never
    if displace_rng.random() < config.displace_fraction:
        first, last = (round(w * config.fps) for w in config.displace_window_s)
        displace_at = int(displace_rng.integers(first, last + 1))
    for step in range(config.max_steps):
        action = expert.act()
        frame = {key: observation.images[camera] for camera, key in CAMERA_KEYS.items() if observation.images}
        frame[STATE] = observation.joint_positions_rad.astype(np.float32)
        frame[ENV_STATE] = arm.environment_state()
        frame[ACTION] = action.astype(np.float32)
        frame[TASK] = observation.instruction
        frames.append(frame)
        if config.action_noise_std_rad > 0:
            draw = config.action_noise_std_rad * rng.standard_normal(len(noise) - 1)
            noise[arm_joints] = keep * noise[arm_joints] + math.sqrt(1 - keep * keep) * draw
            action = np.clip(action + noise, lower, upper)
        if step + 1 == displace_at:
            displace_cube(arm, episode_seed)  # the next observation shows it moved
        observation = arm.step(action, render=(step + 1) % image_stride == 0)
        if expert.done:
            if arm.is_success():
                return frames, True
            steps_since_done += 1
            if steps_since_done > config.settle_steps:
                return frames, False
    return frames, False


def _remove_empty_tree(path: Path) -> None:
    if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
        shutil.rmtree(path)


def _bytes_under(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
