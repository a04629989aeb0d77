"""`asyncvla-ros offline-eval`: chunk errors of a policy on a recorded dataset, no simulator needed.

    asyncvla-ros offline-eval --model runs/tiny/final --dataset data/held_out_demos --count 200

Prints JSON: the SFM and AsyncVLA chunk errors against the demonstrated chunks, the rater's AUROC
(its confidence against each SFM step's error), and the SFM error
with one input swapped at a time (another episode's images, another instruction, no history), which
tells whether the policy uses its cameras, its instruction and its history at all.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros offline-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="policy checkpoint directory")
    parser.add_argument("--dataset", required=True, help="local LeRobotDataset folder (held-out demonstrations)")
    parser.add_argument("--count", type=int, default=100, help="sampled steps")
    parser.add_argument("--seed", type=int, default=0, help="sampling and flow-noise seed")
    parser.add_argument("--device", default="cpu")
    opts = parser.parse_args(argv)
    if opts.count < 1:
        parser.error(f"--count must be >= 1, got {opts.count}")
    from asyncvla_ros.data.load import load_dataset
    from asyncvla_ros.evaluation.offline import chunk_errors, input_sensitivity
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.lerobot_episodes import episodes_from_lerobot, required_features
    from asyncvla_ros.training.samples import ChunkSamples

    policy = AsyncVLAPolicy.from_pretrained(opts.model, device=opts.device)
    bb, e = policy.config.backbone, policy.config.expert
    dataset = load_dataset(opts.dataset, required=required_features(bb.camera_names))
    episodes = episodes_from_lerobot(dataset, list(bb.camera_names), (bb.image_height_px, bb.image_width_px))
    samples = ChunkSamples(episodes, e.chunk_len, e.history_len)
    from tqdm import tqdm

    with tqdm(total=2 * opts.count, desc="sampled steps", unit="step") as bar:
        report = {"model": opts.model, "dataset": opts.dataset, "episodes": len(episodes),
                  **chunk_errors(policy, samples, opts.count, opts.seed, progress=bar),
                  **input_sensitivity(policy, samples, opts.count, opts.seed, progress=bar)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
