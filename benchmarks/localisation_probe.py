"""How precisely does a policy's backbone know where the cube is, and which area the instruction names?

A linear probe (ridge regression) from the last prefix token as it enters the decoder's last layer
(what the training-only scene-state head reads, `scene_heads.flow_and_scene_state_losses`) to the
privileged scene state that `asyncvla-ros demos` records. It is fitted on half of the dataset's episodes and scored on the
other half, then the halves swap; the RMS error is in cm. The action tokens attend to every prefix
token of every layer, so this is a lower bound on what the policy can read, not its grasp error.

    asyncvla-ros demos --out /tmp/probe12 --episodes 12 --seed 1200 --start-noise 0.15
    python benchmarks/localisation_probe.py --dataset /tmp/probe12 --model asyncvla_ros/models/default --model runs/b8x/final
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from asyncvla_ros.data.load import load_dataset
from asyncvla_ros.policy.policy import AsyncVLAPolicy
from asyncvla_ros.sim.task import ENVIRONMENT_STATE_NAMES
from asyncvla_ros.training.lerobot_episodes import episodes_from_lerobot, required_features
from asyncvla_ros.training.scene_heads import last_layer_input

CUBE_XY = [ENVIRONMENT_STATE_NAMES.index("cube_x"), ENVIRONMENT_STATE_NAMES.index("cube_y")]
TARGET_XY = [ENVIRONMENT_STATE_NAMES.index("target_x"), ENVIRONMENT_STATE_NAMES.index("target_y")]


def prefix_features(policy, episodes, every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, scene states, episode number) of every `every`-th step of each episode."""
    features, targets, episode = [], [], []
    with torch.no_grad(), last_layer_input(policy.backbone) as captured:
        for number, ep in enumerate(episodes):
            for t in range(0, len(ep.states), every):
                cond = policy.encode(ep.frames(t), ep.task)
                last = int(cond.num_prefix_tokens[0]) - 1
                features.append(captured["hidden"][0, last].float().numpy())
                targets.append(ep.env_states[t])
                episode.append(number)
    return np.array(features), np.array(targets), np.array(episode)


def probe_errors(features: np.ndarray, targets: np.ndarray, episode: np.ndarray, ridge: float) -> np.ndarray:
    """Held-out residuals of a ridge fit, two folds split by episode (even / odd)."""
    residuals = []
    for fold in (0, 1):
        train, test = episode % 2 != fold, episode % 2 == fold
        mean, std = features[train].mean(0), features[train].std(0) + 1e-6
        design = np.c_[(features[train] - mean) / std, np.ones(train.sum())]
        weights = np.linalg.solve(design.T @ design + ridge * len(design) * np.eye(design.shape[1]), design.T @ targets[train])
        predicted = np.c_[(features[test] - mean) / std, np.ones(test.sum())] @ weights
        residuals.append(predicted - targets[test])
    return np.concatenate(residuals)


def rms_cm(offsets_m: np.ndarray) -> float:
    """RMS length (cm, 2 decimals) of (N, 2) offsets in m."""
    return round(float(np.sqrt((offsets_m ** 2).sum(1).mean()) * 100), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a dataset from `asyncvla-ros demos` (it records the scene state)")
    parser.add_argument("--model", action="append", required=True, help="policy directory; repeatable")
    parser.add_argument("--every", type=int, default=2, help="probe every Nth step of each episode")
    parser.add_argument("--ridge", type=float, default=1e-2)
    args = parser.parse_args()
    loaded = {}  # (cameras, image size) -> episodes: decoded once for the models that share them
    for model in args.model:
        policy = AsyncVLAPolicy.from_pretrained(model).eval()
        bb = policy.config.backbone
        key = (tuple(bb.camera_names), bb.image_height_px, bb.image_width_px)
        if key not in loaded:
            dataset = load_dataset(args.dataset, required=required_features(bb.camera_names) + ["observation.environment_state"])
            loaded[key] = episodes_from_lerobot(dataset, list(bb.camera_names), key[1:])
        episodes = loaded[key]
        if len(episodes) < 2:
            raise SystemExit(f"--dataset {args.dataset}: the probe needs at least 2 episodes (one per fold)")
        features, targets, episode = prefix_features(policy, episodes, args.every)
        residuals = probe_errors(features, targets, episode, args.ridge)
        print(json.dumps({"model": model, "frames": len(features), "cube_xy_cm": rms_cm(residuals[:, CUBE_XY]),
                          "target_xy_cm": rms_cm(residuals[:, TARGET_XY]),
                          "cube_xy_spread_cm": rms_cm((targets - targets.mean(0))[:, CUBE_XY])}), flush=True)


if __name__ == "__main__":
    main()
