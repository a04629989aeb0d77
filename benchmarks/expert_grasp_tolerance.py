"""How far off its grasp point the scripted expert can be and still solve the task: each episode gets one
fixed horizontal offset (a seeded random direction, `--offset-mm` long) added to its hover and descend
goals, as a policy that misjudges where the cube is would aim, and the expert's own restart-on-a-bad-
descent rule is off, so one attempt counts. Success per offset, for the jaw clearance under test
(ExpertConfig.fixed_jaw_clearance_m: how far the fixed jaw stays off the cube face). Prints JSON.

    python benchmarks/expert_grasp_tolerance.py --clearance-mm 7 18 --offset-mm 8 12 16 --seeds 100:120
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def run(clearance_m: float, offset_m: float, seeds, opening_rad: float) -> int:
    from asyncvla_ros.sim import SimArm, SimArmConfig
    from asyncvla_ros.sim.expert import ExpertConfig, Phase, ScriptedExpert

    class Offset(ScriptedExpert):
        offset = np.zeros(3)

        def _goal(self, measured_point):
            goal = super()._goal(measured_point)
            return goal + self.offset if self._phase in (Phase.HOVER, Phase.DESCEND) else goal

    arm = SimArm(SimArmConfig(cameras=()))
    solved = 0
    for seed in seeds:
        arm.reset(seed)
        expert = Offset(arm, ExpertConfig(fixed_jaw_clearance_m=clearance_m, gripper_open_rad=opening_rad, off_descent_m=10.0))
        angle = np.random.default_rng(seed + 777).uniform(0, 2 * np.pi)
        expert.offset = np.array([offset_m * np.cos(angle), offset_m * np.sin(angle), 0.0])
        for _ in range(400):
            arm.step(expert.act())
            if expert.done and arm.is_success():
                break
        solved += bool(arm.is_success())
    arm.close()
    return solved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clearance-mm", type=float, nargs="+", default=[7.0, 18.0])
    p.add_argument("--offset-mm", type=float, nargs="+", default=[0.0, 8.0, 12.0, 16.0])
    p.add_argument("--opening-rad", type=float, default=0.9, help="ExpertConfig.gripper_open_rad")
    p.add_argument("--seeds", default="100:120", help="start:stop")
    opts = p.parse_args()
    start, stop = (int(v) for v in opts.seeds.split(":"))
    seeds = range(start, stop)
    table = {f"clearance {c:g} mm": {f"offset {o:g} mm": f"{run(c / 1000, o / 1000, seeds, opening_rad=opts.opening_rad)}/{len(seeds)}"
                                     for o in opts.offset_mm} for c in opts.clearance_mm}
    print(json.dumps({"seeds": opts.seeds, "opening_rad": opts.opening_rad, "solved": table}, indent=2))


if __name__ == "__main__":
    main()
