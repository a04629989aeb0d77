"""Training throughput of the stage-1 trainer (samples/s), as JSON.

    asyncvla-ros bench-train                                   # tiny config on CPU
    asyncvla-ros bench-train --size 3b --device cuda --gradient-checkpointing --num-workers 8

The policy shapes are bench-policy's ("tiny", or Qwen2.5-VL-3B with random weights, in bf16 on a GPU);
the data are synthetic episodes (random images at the policy's size, random-walk joints), so the
figure is the trainer's and the model's alone: batch preparation (tokenising, the image processor;
`--num-workers` processes ahead of the optimizer), forward and backward through the batched vision
tower, the decoder and the action expert, and the optimizer step. The first `--warmup` steps are not
timed; no checkpoint is written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch

from asyncvla_ros.bench.report import emit
from asyncvla_ros.bench.policy_latency import INSTRUCTION, check_depth, gpu_memory_mb, make_config
from asyncvla_ros.policy.policy import AsyncVLAPolicy
from asyncvla_ros.training.config import TrainConfig
from asyncvla_ros.training.samples import ChunkSamples, Episode
from asyncvla_ros.training.trainer import Trainer

EPISODES, STEPS_PER_EPISODE = 8, 60


def synthetic_samples(config, seed: int = 0) -> ChunkSamples:
    """Episodes of random images and random-walk joint targets, in the policy's shapes."""
    rng = np.random.default_rng(seed)
    h, w = config.backbone.image_height_px, config.backbone.image_width_px
    cams, e = len(config.backbone.camera_names), config.expert
    images = rng.integers(0, 256, (16, cams, h, w, 3), dtype=np.uint8)  # a small pool, reused across steps
    episodes = []
    for i in range(EPISODES):
        actions = np.cumsum(rng.normal(0, 0.02, (STEPS_PER_EPISODE, e.action_dim)), axis=0).astype(np.float32)
        episodes.append(Episode(states=actions.copy(), actions=actions, task=INSTRUCTION, fps=20.0,
                                frames=lambda t, i=i: list(images[(i + t) % len(images)])))
    return ChunkSamples(episodes, e.chunk_len, e.history_len)


def run(size: str, device: str, dtype: str, steps: int, warmup: int, batch_size: int, gradient_checkpointing: bool,
        num_workers: int, mixed_precision: str, depth: int | None = None) -> dict:
    config = make_config(size, dtype, depth)
    with torch.device(device):
        policy = AsyncVLAPolicy.build(config, [INSTRUCTION]).to(device)
    samples = synthetic_samples(config)
    train = TrainConfig(steps=warmup + steps, rater_steps=0, batch_size=batch_size, warmup_steps=0, device=device,
                        gradient_checkpointing=gradient_checkpointing, num_workers=num_workers,
                        mixed_precision=mixed_precision, log_every=10**9, checkpoint_every=10**9,
                        time_misalignment=True, history_noise_rad=0.02)
    with tempfile.TemporaryDirectory(prefix="asyncvla-bench-train-") as out:
        trainer = Trainer(policy, samples, train, out)
        trainer.policy.normalizer = samples.normalizer()
        trainer.save_checkpoint = lambda: None  # a step's time is the figure; writing a 3B checkpoint is not a step
        times: list[float] = []
        step_loss = trainer._stage1_loss

        def timed_loss(pol, batch):  # called once per optimizer step, with the step's batch in hand
            times.append(time.perf_counter())
            return step_loss(pol, batch)

        t0 = time.perf_counter()
        trainer._train_stage(train.steps, timed_loss)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter())
        trainer.close()
    per_step = np.diff(times)[warmup:]  # loss of step i to loss of step i + 1: one whole step
    return {
        "size": size,
        "depth": depth,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "dtype": dtype,
        "mixed_precision": mixed_precision,
        "gradient_checkpointing": gradient_checkpointing,
        "num_workers": num_workers,
        "batch_size": batch_size,
        "params_million": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
        "timed_steps": int(len(per_step)),
        "step_s": {"p50": round(float(np.median(per_step)), 4), "p99": round(float(np.percentile(per_step, 99)), 4)},
        "samples_per_s": round(batch_size / float(np.median(per_step)), 2),
        "wall_s": round(time.perf_counter() - t0, 1),
        "gpu_memory": gpu_memory_mb(device),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-train", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "3b"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                        help="the weights' dtype; default: bfloat16 for 3b, else float32")
    parser.add_argument("--mixed-precision", choices=("no", "bf16"), default="no", help="accelerate's autocast (float32 weights)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--depth", type=int, default=None,
                        help="--size 3b with this many decoder layers and vision blocks (a check of the 3B shapes on a CPU)")
    parser.add_argument("--out", default="", help="also write the JSON report here")
    args = parser.parse_args(argv)
    check_depth(parser, args)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.num_workers < 0:
        parser.error("--steps and --batch-size must be >= 1, --warmup and --num-workers >= 0")
    dtype = args.dtype or ("bfloat16" if args.size == "3b" else "float32")
    report = run(args.size, args.device, dtype, args.steps, args.warmup, args.batch_size, args.gradient_checkpointing,
                 args.num_workers, args.mixed_precision, args.depth)
    print(f"{report['size']} on {report['device']}: {report['samples_per_s']} samples/s "
          f"(step p50 {report['step_s']['p50']} s, batch {report['batch_size']})", file=sys.stderr)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
