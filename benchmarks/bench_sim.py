"""Benchmark the simulated arm: render fps per camera, physics and control steps per second, and the
scripted expert's success rate. Prints one JSON object.

    python benchmarks/bench_sim.py [--size 224] [--frames 100] [--steps 200] [--expert-seeds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="image side, px")
    parser.add_argument("--frames", type=int, default=100, help="renders timed per camera")
    parser.add_argument("--steps", type=int, default=200, help="control steps timed")
    parser.add_argument("--expert-seeds", type=int, default=20, help="episodes per instruction (0 skips)")
    parser.add_argument("--mesh-face-budget", type=int, default=2000, help="0 renders the original meshes")
    args = parser.parse_args()

    from asyncvla_ros.sim import SimArm, SimArmConfig, task
    from asyncvla_ros.sim._mujoco import mujoco
    from asyncvla_ros.sim.expert import run_episode
    from asyncvla_ros.sim.sim_arm import HOME_POSITIONS_RAD

    result: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    start = time.perf_counter()
    arm = SimArm(SimArmConfig(image_size_px=args.size, mesh_face_budget=args.mesh_face_budget))
    result["build_s"] = round(time.perf_counter() - start, 3)
    result["render_backend"] = os.environ.get("MUJOCO_GL")
    result["image_size_px"] = args.size
    result["mesh_triangles"] = int(arm.model.nmeshface)
    arm.reset(0)

    render_fps = {}
    for camera in task.CAMERA_NAMES:
        arm.render(camera)  # first render creates the GL context
        start = time.perf_counter()
        for _ in range(args.frames):
            arm.render(camera)
        render_fps[camera] = _rate(args.frames, time.perf_counter() - start)
    result["render_fps"] = render_fps

    # Raw physics on a scratch MjData, arm holding its home pose.
    data = mujoco.MjData(arm.model)
    data.qpos[:6] = data.ctrl[:6] = HOME_POSITIONS_RAD
    n_physics = 5000
    start = time.perf_counter()
    mujoco.mj_step(arm.model, data, nstep=n_physics)
    result["physics_steps_per_s"] = _rate(n_physics, time.perf_counter() - start)
    result["physics_timestep_s"] = arm.model.opt.timestep

    target = HOME_POSITIONS_RAD + np.array([0.3, -0.2, 0.2, -0.2, 0.5, 0.2])
    start = time.perf_counter()
    for _ in range(args.steps):
        arm.step(target)
    result["control_steps_per_s_with_cameras"] = _rate(args.steps, time.perf_counter() - start)
    arm.close()

    blind = SimArm(SimArmConfig(cameras=(), mesh_face_budget=args.mesh_face_budget))
    blind.reset(0)
    start = time.perf_counter()
    for _ in range(args.steps):
        blind.step(target)
    result["control_steps_per_s_no_cameras"] = _rate(args.steps, time.perf_counter() - start)
    result["control_period_s"] = blind.config.control_period_s

    if args.expert_seeds:
        successes, start = {}, time.perf_counter()
        for instruction in task.INSTRUCTIONS:
            wins = sum(run_episode(blind, seed, instruction) for seed in range(args.expert_seeds))
            successes[instruction] = f"{wins}/{args.expert_seeds}"
        result["expert_success"] = successes
        result["expert_s_per_episode"] = round(
            (time.perf_counter() - start) / (args.expert_seeds * len(task.INSTRUCTIONS)), 3
        )
    blind.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
