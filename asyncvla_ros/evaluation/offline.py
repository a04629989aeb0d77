"""Offline metric on recorded data: how far SFM and AsyncVLA chunks are from the demonstrated ones."""

from __future__ import annotations

import numpy as np

from asyncvla_ros.training.samples import ChunkSamples


def chunk_errors(policy, samples: ChunkSamples, count: int, seed: int = 0) -> dict:
    """Mean squared error (robot units^2, valid steps only) of the SFM and final chunks vs the demonstration.

    Samples `count` steps uniformly (seeded); each is planned with `act()` from its own observation.
    """
    rng = np.random.default_rng(seed)
    sfm, final, regenerated = [], [], []
    for i, index in enumerate(rng.integers(0, len(samples), count)):
        s = samples.sample(int(index))
        valid = s["action_valid"]
        k = int(s["history_valid"].sum())
        history = s["history"][len(s["history"]) - k:] if k else None
        state = s["obs_state"] if policy.config.backbone.state_in_prompt else None
        cond = policy.encode(s["images"], s["task"], state=state)
        chunk = policy.act(cond, s["state"], history, mode="asyncvla", seed=seed + i)
        target = s["actions"][valid]
        sfm.append(float(np.mean((chunk.sfm_actions[valid] - target) ** 2)))
        final.append(float(np.mean((chunk.actions[valid] - target) ** 2)))
        regenerated.append(int(chunk.regenerated.sum()))
    return {"samples": int(count), "sfm_mse": float(np.mean(sfm)), "asyncvla_mse": float(np.mean(final)),
            "mean_regenerated_steps": float(np.mean(regenerated))}
