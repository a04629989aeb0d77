"""`asyncvla-ros demos`: record scripted-expert demonstrations from the sim into a local LeRobotDataset.

    asyncvla-ros demos --out demos/pick_place --episodes 20 --seed 0
    asyncvla-ros demos --out /tmp/small --episodes 3 --image-size-px 64

Prints a progress bar on stderr and the report (episodes, successes, frames, seconds, size) as JSON on
stdout. Only the expert's successful episodes are stored; the exit status is 1 when none succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros demos", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="dataset folder to create (must not exist)")
    parser.add_argument("--episodes", type=int, required=True, help="episodes attempted")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed + i")
    parser.add_argument("--image-size-px", type=int, default=112, help="side of the square camera images, px")
    parser.add_argument("--fps", type=int, default=20, help="control and recording rate, Hz")
    parser.add_argument("--max-duration-s", type=float, default=20.0, help="sim time before an episode fails, s")
    parser.add_argument("--action-noise-std", type=float, default=0.0, metavar="RAD",
                        help="DART: execute the expert's targets plus slowly varying noise of this std on the arm joints "
                             "(recorded actions stay the expert's); 0 = off")
    parser.add_argument("--start-noise", type=float, default=0.02, metavar="RAD",
                        help="spread of the arm's start pose (uniform, every joint); the evaluation's is 0.02")
    parser.add_argument("--displace-fraction", type=float, default=0.0, metavar="F",
                        help="fraction of episodes in which the cube is moved once, 0.5-3 s in, and the expert starts "
                             "its grasp over for the new pose; 0 = none")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    import datasets

    from asyncvla_ros.data.record import record_demos

    datasets.disable_progress_bars()  # the one bar is ours; `datasets` would add one per saved episode

    try:
        report = record_demos(
            args.out, args.episodes, args.seed, image_size_px=args.image_size_px, fps=args.fps,
            max_duration_s=args.max_duration_s, action_noise_std_rad=args.action_noise_std, start_noise_rad=args.start_noise,
            displace_fraction=args.displace_fraction,
            progress=not args.no_progress,
        )
    except (ValueError, FileExistsError) as exc:
        print(f"asyncvla-ros demos: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["episodes_saved"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
