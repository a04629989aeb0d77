"""`asyncvla-ros train`: both training stages on a local LeRobotDataset.

    asyncvla-ros train --dataset data/sim_demos --out runs/tiny
    asyncvla-ros train --dataset DIR --out runs/3b --init /models/Qwen2.5-VL-3B-Instruct --device cuda --bf16
    asyncvla-ros train --dataset DIR --out runs/tiny --resume runs/tiny/checkpoints/stage1-step000500

Without --init a tiny policy is built (cameras, state and action sizes from the dataset, vocabulary
from its tasks). Writes checkpoints/, tensorboard/, metrics.jsonl and final/ (the policy to run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from asyncvla_ros.training.config import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asyncvla-ros train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, action="append",
                   help="LeRobotDataset folder (local; never fetched); repeat to train on several with the same features")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--init", default="", help="start from this policy checkpoint, or from the weights of a Qwen2.5-VL directory")
    p.add_argument("--resume", default="", help="continue from a checkpoints/stage*-step* directory of a run")
    p.add_argument("--image-size-px", type=int, default=112, help="new tiny policy: square image size")
    p.add_argument("--chunk-len", type=int, default=10, help="new policy: actions per chunk (L)")
    p.add_argument("--history-len", type=int, default=20, help="new policy: executed actions as condition (K); 0 = no history")
    p.add_argument("--hidden-size", type=int, default=64, help="new tiny policy: decoder width")
    p.add_argument("--layers", type=int, default=2, help="new tiny policy: decoder layers")
    p.add_argument("--vision-hidden-size", type=int, default=32, help="new tiny policy: vision tower width")
    p.add_argument("--vision-depth", type=int, default=1, help="new tiny policy: vision tower blocks")
    p.add_argument("--no-image-position-embedding", action="store_true",
                   help="new tiny policy: no learned image-token position embedding (see BackboneConfig)")
    p.add_argument("--state-in-prompt", action="store_true", help="new policy: the state also enters the prompt as text")
    p.add_argument("--no-time-misalignment", action="store_true", help="train with synchronised semantics only")
    p.add_argument("--sfm-only", action="store_true", help="plain SFM training (the 'w/o unified training' ablation)")
    defaults = TrainConfig()
    for name in ("steps", "rater_steps", "batch_size", "warmup_steps", "checkpoint_every", "log_every", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr_language_model", "lr_action_expert", "lr_vision", "lr_rater", "history_noise_std", "state_noise_std", "history_dropout"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--gradient-checkpointing", action="store_true")
    return p


def new_policy(dataset, cameras, opts, pretrained_dir: str = "", tasks=None):
    """A policy shaped by the dataset; the backbone random and tiny, or loaded from `pretrained_dir`.

    `tasks` (default: the dataset's) is the instruction vocabulary of a new tiny tokenizer.
    """
    from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig, tiny_vlm_config
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    features = dataset.meta.features
    size = opts.image_size_px
    config = PolicyConfig(
        backbone=BackboneConfig(camera_names=tuple(cameras), image_height_px=size, image_width_px=size,
                                max_prefix_tokens=len(cameras) * (size // 28) ** 2 + 64, pretrained_dir=pretrained_dir or None,
                                vlm_config=tiny_vlm_config(opts.hidden_size, opts.layers, opts.vision_hidden_size, opts.vision_depth),
                                # A pretrained backbone keeps its own architecture; a tiny one needs the embedding.
                                image_position_embedding=not (pretrained_dir or opts.no_image_position_embedding),
                                state_in_prompt=opts.state_in_prompt),
        expert=ActionExpertConfig(action_dim=int(features["action"]["shape"][0]),
                                  state_dim=int(features["observation.state"]["shape"][0]),
                                  chunk_len=opts.chunk_len, history_len=opts.history_len),
        model_id=f"asyncvla-{'qwen' if pretrained_dir else 'tiny'}-{time.strftime('%Y%m%d-%H%M%S')}",
    )
    return AsyncVLAPolicy.build(config, list(tasks if tasks is not None else dataset.meta.tasks.index), seed=opts.seed)


def load_datasets(paths: list[str]):
    """Every dataset, checked to have the same cameras and state/action shapes. Returns (datasets, cameras)."""
    from asyncvla_ros.data.load import load_dataset
    from asyncvla_ros.training.lerobot_episodes import camera_names, required_features

    datasets, cameras = [], None
    for path in paths:
        probe = load_dataset(path, required=["observation.state", "action", "task"])
        these = camera_names(probe)
        dataset = load_dataset(path, required=required_features(these))
        if cameras is None:
            cameras, first = these, dataset
        elif these != cameras:
            raise SystemExit(f"--dataset {path}: cameras {these} differ from {paths[0]}'s {cameras}")
        else:
            for key in ("observation.state", "action"):
                a, b = tuple(first.meta.features[key]["shape"]), tuple(dataset.meta.features[key]["shape"])
                if a != b:
                    raise SystemExit(f"--dataset {path}: {key} has shape {b}, {paths[0]} has {a}")
        datasets.append(dataset)
    return datasets, cameras


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from asyncvla_ros.policy.checkpoint import POLICY_FILE
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.lerobot_episodes import episodes_from_lerobot
    from asyncvla_ros.training.samples import ChunkSamples
    from asyncvla_ros.training.trainer import Trainer

    config = TrainConfig(
        **{f.name: getattr(opts, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(opts, f.name)},
        unified=not opts.sfm_only, time_misalignment=not opts.no_time_misalignment,
    )
    datasets, cameras = load_datasets(opts.dataset)
    dataset = datasets[0]
    tasks = list(dict.fromkeys(t for d in datasets for t in d.meta.tasks.index))
    if opts.resume:
        policy = AsyncVLAPolicy.from_pretrained(opts.resume)
    elif opts.init and (Path(opts.init) / POLICY_FILE).is_file():
        policy = AsyncVLAPolicy.from_pretrained(opts.init, dtype="float32")
    elif opts.init:
        policy = new_policy(dataset, cameras, opts, pretrained_dir=opts.init, tasks=tasks)
    else:
        policy = new_policy(dataset, cameras, opts, tasks=tasks)
    if tuple(policy.config.backbone.camera_names) != tuple(cameras):
        raise SystemExit(f"the policy's cameras {list(policy.config.backbone.camera_names)} are not the dataset's {cameras}")
    bb, e = policy.config.backbone, policy.config.expert
    episodes = [ep for d in datasets for ep in episodes_from_lerobot(d, cameras, (bb.image_height_px, bb.image_width_px))]
    samples = ChunkSamples(episodes, e.chunk_len, e.history_len)
    trainer = Trainer.resume(opts.resume, samples, opts.out, config) if opts.resume else Trainer(policy, samples, config, opts.out)
    t0 = time.perf_counter()
    final = trainer.fit()
    report = {"final": str(final), "episodes": len(episodes), "frames": len(samples), "seconds": round(time.perf_counter() - t0, 1),
              "device": config.device, "config": dataclasses.asdict(config)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
