"""Closed-loop evaluation of a policy on the embedded sim, on held-out seeds.

Each episode runs the deployed control path: `ActionLoop` (the action node's own per-tick logic:
act(), temporal ensembling, executed-action history) and `SafetyFilter` (the safety node's clamps)
between the policy and the simulated arm, in simulated time, and the semantic node's `SemanticLoop`
in front of them. Semantics are refreshed every
`semantic_period_steps` ticks from the observation of that tick and become usable
`semantic_latency_steps` ticks later, so 1/0 is synchronous and larger values reproduce the stale
semantics of the asynchronous split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.control.action_loop import CHUNK_MODES, ActionLoop, ActionLoopConfig
from asyncvla_ros.control.joint_space import JointCalibrationConfig, JointSpace, parse_camera_map
from asyncvla_ros.control.refresh_trigger import RefreshTrigger, RefreshTriggerConfig
from asyncvla_ros.control.safety import SafetyConfig, SafetyFilter
from asyncvla_ros.control.semantic_loop import SemanticLoop, SemanticLoopConfig
from asyncvla_ros.control.semantic_store import SemanticItem
from asyncvla_ros.evaluation.seams import episode_seams
from asyncvla_ros.policy.config import ACT_MODES
from asyncvla_ros.sim.disturbance import displace_cube

STEP_NS = 50_000_000  # one 20 Hz control period in simulated nanoseconds


@dataclass
class EvalConfig:
    mode: str = "asyncvla"  # asyncvla | sfm_only | random_mask
    max_steps: int = 300  # per episode (15 s at 20 Hz)
    semantic_period_steps: int = 1  # refresh semantics every this many ticks
    semantic_latency_steps: int = 0  # a refresh becomes usable this many ticks after its observation
    ensemble_decay: float = 0.1
    max_step_rad: float = 0.1  # safety filter step limit per tick, every joint
    policy_seed: int = 0
    # A disturbance to recover from: at this tick the cube is put down elsewhere (a fresh spawn at least
    # DISPLACE_MIN_MOVE_M from where it was, drawn from the episode seed: sim/disturbance.py), unless the
    # arm already holds or touches it. 0 = none.
    disturb_at_step: int = 0
    # The disturbance comes this many ticks later at most, by episode seed (seed % (N + 1)): spread over
    # the phase of a slow semantic refresh, so how soon a refresh sees it is not one fixed offset.
    disturb_spread_steps: int = 0
    chunk_mode: str = "ensemble"  # ActionLoopConfig.chunk_mode
    plan_delay_ticks: int = 0  # ActionLoopConfig.plan_delay_ticks: a plan from tick t's inputs acts from t + d
    # RefreshTriggerConfig.trigger_drop: a chunk confidence this far below its recent median asks for a
    # semantic refresh at the next tick, before semantic_period_steps would (0 = off).
    trigger_drop: float = 0.0
    # POLICY:=SIM pairs for a policy trained on other camera names (e.g. top:=front); see make_arm.
    camera_map: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ACT_MODES:
            raise ValueError(f"EvalConfig.mode must be one of {ACT_MODES}, got {self.mode!r}")
        if self.chunk_mode not in CHUNK_MODES:
            raise ValueError(f"EvalConfig.chunk_mode must be one of {CHUNK_MODES}, got {self.chunk_mode!r}")
        for name in ("max_steps", "semantic_period_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvalConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.trigger_drop <= 1.0:
            raise ValueError(f"EvalConfig.trigger_drop must be in [0, 1], got {self.trigger_drop!r}")
        for name in ("semantic_latency_steps", "disturb_at_step", "disturb_spread_steps", "plan_delay_ticks"):
            if getattr(self, name) < 0:
                raise ValueError(f"EvalConfig.{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass
class EpisodeResult:
    seed: int
    instruction: str
    success: bool
    steps: int
    mean_regenerated: float  # AFM-regenerated steps per chunk
    mean_semantic_age_steps: float
    wall_s: float
    # Partial progress, to tell "never reached the cube" from "dropped it on the way":
    cube_lifted: bool  # the cube's centre rose LIFT_HEIGHT_M above its resting height at some tick
    final_target_distance_m: float  # cube centre to the instructed area's centre (xy) at the end
    disturbed: bool = False  # the cube was moved at EvalConfig.disturb_at_step
    seams: dict | None = None  # evaluation.seams.episode_seams of the loop's commands
    refreshes: int = 0  # semantic encodes in the episode (the compute spent on semantics)
    triggered_refreshes: int = 0  # of them, asked for by the confidence trigger
    # Disturbed episodes: from the cube's move to the first refresh of a frame showing it becoming usable, s.
    disturbance_seen_after_s: float | None = None
    # The colour of the area the cube's centre lies in at the end (None: in none), to tell a cube put in
    # the wrong area (the instruction misread) from one dropped on the way.
    final_area: str | None = None


LIFT_HEIGHT_M = 0.02


def run_episode(policy, arm, seed: int, config: EvalConfig, on_tick=None) -> EpisodeResult:
    """One episode on `arm` (a SimArm with the policy's cameras) from `arm.reset(seed)`.

    `on_tick(step, observation, tick_result, target)`, when given, sees every tick before the arm moves
    to `target`, what the safety filter let through (the video writer draws from it, DAgger labels it)."""
    t_wall = time.perf_counter()
    obs = arm.reset(seed=seed)
    cameras = parse_camera_map(config.camera_map, policy.config.backbone.camera_names)  # policy camera -> sim camera
    lower, upper = arm.joint_limits_rad
    safety = SafetyFilter(SafetyConfig(arm.joint_names, tuple(lower), tuple(upper), (config.max_step_rad,) * len(lower)))
    # The policy's joint units against the sim's radians; a normalised range spans the sim's joint limits.
    joints = JointSpace(policy.config.joints, arm.joint_names, JointCalibrationConfig(tuple(lower), tuple(upper)))
    loop = ActionLoop(policy, ActionLoopConfig(max_semantic_age_s=60.0, ensemble_decay=config.ensemble_decay,
                                               mode=config.mode, seed=config.policy_seed, chunk_mode=config.chunk_mode,
                                               plan_delay_ticks=config.plan_delay_ticks), joints)
    # The semantic node's own loop, in sim time: its rate cap makes it encode every semantic_period_steps ticks.
    semantic = SemanticLoop(policy, SemanticLoopConfig(camera_names=tuple(cameras),
                                                        max_rate_hz=1e9 / (config.semantic_period_steps * STEP_NS)),
                            joint_space=joints)
    semantic.set_instruction(obs.instruction)
    trigger = RefreshTrigger(RefreshTriggerConfig(trigger_drop=config.trigger_drop))
    moved_at_ns = seen_after_s = None
    disturb_at = config.disturb_at_step + (seed % (config.disturb_spread_steps + 1) if config.disturb_at_step else 0)
    pending: list[tuple[int, SemanticItem]] = []  # (tick it becomes usable, semantics)
    current: SemanticItem | None = None
    regenerated, ages = [], []
    commands, switched = [], []
    success = False
    lifted = False
    disturbed = False
    rest_z = arm.cube_pose()[0][2]
    step = 0
    for step in range(config.max_steps):
        now_ns = step * STEP_NS
        for camera, sim_camera in cameras.items():
            semantic.add_frame(camera, now_ns, obs.images[sim_camera])
        semantic.set_state(obs.joint_positions_rad, now_ns)
        item = semantic.step(now_ns)
        if item is not None:
            pending.append((step + config.semantic_latency_steps, item))
        while pending and pending[0][0] <= step:
            current = pending.pop(0)[1]
            if moved_at_ns is not None and seen_after_s is None and current.stamp_ns >= moved_at_ns:
                seen_after_s = (now_ns - moved_at_ns) * 1e-9
        safety.update_state(arm.joint_names, obs.joint_positions_rad, now_ns)
        result = loop.tick(now_ns, current, obs.joint_positions_rad, now_ns)
        if result.command is None:
            target = obs.joint_positions_rad  # no semantics yet: hold
        else:
            verdict = safety.check(arm.joint_names, result.command, now_ns, now_ns)
            target = verdict.positions if verdict.accepted else obs.joint_positions_rad
            if verdict.accepted:
                loop.executed(now_ns, verdict.positions)  # as the action node hears back on safe_joint_command
        if on_tick is not None:
            on_tick(step, obs, result, target)
        commands.append(None if result.holding else result.command)
        switched.append(result.switched)
        if result.chunk is not None:
            regenerated.append(int(result.chunk.regenerated.sum()))
            ages.append((now_ns - result.semantic_stamp_ns) / STEP_NS)
            fired = trigger.observe(now_ns, result.chunk.confidence)
            if fired is not None:
                semantic.request_refresh(fired.reason)
        if config.disturb_at_step and step + 1 == disturb_at:
            disturbed = displace_cube(arm, seed)
            moved_at_ns = (step + 1) * STEP_NS if disturbed else None  # the next observation shows it
        obs = arm.step(target)
        lifted = lifted or bool(arm.cube_pose()[0][2] > rest_z + LIFT_HEIGHT_M)
        if arm.is_success():
            success = True
            break
    distance = float(np.linalg.norm(arm.cube_pose()[0][:2] - arm.target_position()[:2]))
    final_area = area_holding(arm)
    arm_joints = np.array([i for i, name in enumerate(arm.joint_names) if "gripper" not in name])
    return EpisodeResult(seed, obs.instruction, success, step + 1,
                         float(np.mean(regenerated)) if regenerated else 0.0,
                         float(np.mean(ages)) if ages else 0.0, time.perf_counter() - t_wall,
                         lifted, distance, disturbed, episode_seams(commands, switched, STEP_NS * 1e-9, arm_joints),
                         semantic.stats().seq, semantic.stats().triggered, seen_after_s, final_area)


def area_holding(arm) -> str | None:
    """The colour of the area whose square holds the cube's centre (xy), or None."""
    from asyncvla_ros.sim import task

    cube = arm.cube_pose()[0]
    return next((colour for colour in task.TARGET_COLOURS if task.in_area(cube, arm.target_position(colour))), None)


def make_arm(policy, camera_map=()):
    """A SimArm rendering the policy's cameras (through `camera_map`'s POLICY:=SIM pairs) at the policy's
    image size."""
    from asyncvla_ros.sim import SimArm, SimArmConfig
    from asyncvla_ros.sim.task import CAMERA_NAMES

    bb = policy.config.backbone
    if bb.image_height_px != bb.image_width_px:
        raise ValueError(f"the sim renders square images; the policy wants {bb.image_height_px}x{bb.image_width_px}")
    cameras = parse_camera_map(camera_map, bb.camera_names)
    unknown = [c for c in cameras.values() if c not in CAMERA_NAMES]
    if unknown:
        hint = ", ".join(f"{p}:={s}" for p, s in zip(bb.camera_names, CAMERA_NAMES) if p != s)
        raise ValueError(f"the policy's cameras {list(bb.camera_names)} (from the model) are not all the sim's "
                         f"{list(CAMERA_NAMES)}: map them with --camera-map {hint or 'POLICY:=SIM'}")
    return SimArm(SimArmConfig(image_size_px=bb.image_height_px, cameras=tuple(dict.fromkeys(cameras.values()))))


def evaluate(policy, seeds, config: EvalConfig, progress=None) -> list[EpisodeResult]:
    """Run every seed; `progress` (e.g. a tqdm bar) gets update(1) per episode."""
    arm = make_arm(policy, config.camera_map)
    try:
        results = []
        for seed in seeds:
            results.append(run_episode(policy, arm, int(seed), config))
            if progress is not None:
                progress.update(1)
        return results
    finally:
        arm.close()


# ---------------------------------------------------------------------- several processes
# Episodes are independent, so a run spreads (condition, seed) pairs over worker processes, each
# with one torch thread, its own SimArm and its own copy of each policy (loaded from its directory).
# Results are the same as in one process: every episode's randomness comes from its seeds.

_worker_cache: dict[str, tuple] = {}  # model dir -> (policy, arm), per worker process


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _worker_episode(model_dir: str, device: str, seed: int, config: EvalConfig) -> EpisodeResult:
    if model_dir not in _worker_cache:
        from asyncvla_ros.policy.policy import AsyncVLAPolicy

        policy = AsyncVLAPolicy.from_pretrained(model_dir, device=device)
        _worker_cache[model_dir] = (policy, make_arm(policy, config.camera_map))
    policy, arm = _worker_cache[model_dir]
    return run_episode(policy, arm, seed, config)


def evaluate_runs(runs, seeds, jobs: int = 1, device: str = "cpu", progress=None) -> list[list[EpisodeResult]]:
    """Every seed of every run, a run being (model directory, EvalConfig); one result list per run.

    jobs > 1 uses that many worker processes (spawned, so MuJoCo and torch start clean in each).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1:
        from asyncvla_ros.policy.policy import AsyncVLAPolicy

        policies: dict[str, object] = {}
        out = []
        for model_dir, config in runs:
            if model_dir not in policies:
                policies[model_dir] = AsyncVLAPolicy.from_pretrained(model_dir, device=device)
            out.append(evaluate(policies[model_dir], seeds, config, progress=progress))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker) as pool:
        futures = [[pool.submit(_worker_episode, str(model_dir), device, int(seed), config) for seed in seeds]
                   for model_dir, config in runs]
        out = []
        for run_futures in futures:
            results = []
            for future in run_futures:
                results.append(future.result())
                if progress is not None:
                    progress.update(1)
            out.append(results)
        return out
