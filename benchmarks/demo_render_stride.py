"""Time the sim expert demonstrations that `train --sim-episodes` runs, at several image strides
(`--sim-image-stride`), and check that the stride changes only the rendering: the same episodes are
solved with the same number of steps. Prints one JSON line per pass.

    python benchmarks/demo_render_stride.py [--episodes 60] [--seed 5000] [--workers 2] [--strides 1,2,3,1]
"""

from __future__ import annotations

import argparse
import json
import time

from asyncvla_ros.training.sim_episodes import sim_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5000, help="seed of the first episode")
    parser.add_argument("--workers", type=int, default=2, help="sim worker processes")
    parser.add_argument("--size", type=int, default=112, help="image side, px")
    parser.add_argument("--start-noise", type=float, default=0.15, help="start-pose spread, rad (the default recipe's)")
    parser.add_argument("--strides", default="1,2,3,1", help="comma-separated; repeat one to see the spread")
    args = parser.parse_args()
    for stride in (int(s) for s in args.strides.split(",")):
        start = time.perf_counter()
        episodes, _ = sim_episodes(args.episodes, args.seed, image_size_px=args.size, workers=args.workers,
                                   start_noise_rad=args.start_noise, image_stride=stride)
        seconds = time.perf_counter() - start
        print(json.dumps({"stride": stride, "episodes": args.episodes, "solved": len(episodes),
                          "steps": sum(len(e.states) for e in episodes), "seconds": round(seconds, 1),
                          "s_per_episode": round(seconds / args.episodes, 3)}), flush=True)


if __name__ == "__main__":
    main()
