"""Offline metric on recorded data: how far SFM and AsyncVLA chunks are from the demonstrated ones."""

from __future__ import annotations

import numpy as np

from asyncvla_ros.evaluation.stats import auroc
from asyncvla_ros.training.samples import ChunkSamples


def chunk_errors(policy, samples: ChunkSamples, count: int, seed: int = 0, progress=None) -> dict:
    """Mean squared error (robot units^2, valid steps only) of the SFM and final chunks vs the demonstration,
    and the rater's AUROC: its confidence against each SFM step's error. Later chunk steps err more, so
    the AUROC is also given within each chunk position, and for a rater that knows only the position.

    Samples `count` steps uniformly (seeded); each is planned with `act()` from its own observation.
    `progress` (e.g. a tqdm bar) gets update(1) per step.
    """
    rng = np.random.default_rng(seed)
    sfm, final, regenerated = [], [], []
    step_errors, step_confidence, step_index = [], [], []  # per valid chunk step: SFM error, confidence, position
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
        if progress is not None:
            progress.update(1)
        step_errors += np.mean((chunk.sfm_actions[valid] - target) ** 2, axis=1).tolist()
        step_confidence += chunk.confidence[valid].tolist()
        step_index += np.flatnonzero(valid).tolist()
    # The rater's discrimination: how well a low confidence picks out the SFM steps that are worse than
    # the median step (0.5 = no better than chance, 1 = every worse step rated below every better one).
    errors = np.asarray(step_errors)
    worse = errors > np.median(errors)
    confidence = np.asarray(step_confidence)
    position = np.asarray(step_index)
    return {"samples": int(count), "sfm_mse": float(np.mean(sfm)), "asyncvla_mse": float(np.mean(final)),
            "mean_regenerated_steps": float(np.mean(regenerated)),
            "rater_auroc_worse_half": auroc(1.0 - confidence, worse),
            "position_auroc_worse_half": auroc(position, worse),  # "later steps are worse", and nothing else
            "rater_auroc_within_position": _within_position_auroc(1.0 - confidence, errors, position),
            "confidence_mean_worse_half": float(confidence[worse].mean()) if worse.any() else float("nan"),
            "confidence_mean_better_half": float(confidence[~worse].mean()) if (~worse).any() else float("nan")}


def _within_position_auroc(scores: np.ndarray, errors: np.ndarray, position: np.ndarray) -> float:
    """AUROC of `scores` against the steps worse than their own chunk position's median error, per
    position, averaged weighted by each position's count: what the scores know beyond the position."""
    values, weights = [], []
    for p in np.unique(position):
        at = position == p
        a = auroc(scores[at], errors[at] > np.median(errors[at]))
        if np.isfinite(a):
            values.append(a)
            weights.append(int(at.sum()))
    return float(np.average(values, weights=weights)) if values else float("nan")


def input_sensitivity(policy, samples: ChunkSamples, count: int, seed: int = 0, progress=None) -> dict:
    """Does the policy use its inputs? SFM chunk error (mean squared, robot units^2) on `count` sampled
    steps with the step's own inputs, and with one input swapped at a time: another step's images (half
    the dataset away, usually another episode), another step's instruction, and no history.

    A policy whose error does not rise when an input is swapped does not use that input. Each variant
    plans from the same noise (seed), so only the swapped input differs.
    """
    rng = np.random.default_rng(seed)
    in_prompt = policy.config.backbone.state_in_prompt
    errors: dict[str, list[float]] = {"own_inputs": [], "other_images": [], "other_instruction": [], "no_history": []}
    for i, index in enumerate(rng.integers(0, len(samples), count)):
        s = samples.sample(int(index))
        other = samples.sample(int((index + len(samples) // 2) % len(samples)))
        valid = s["action_valid"]
        k = int(s["history_valid"].sum())
        history = s["history"][len(s["history"]) - k:] if k else None
        state = s["obs_state"] if in_prompt else None

        def error(images, task, hist) -> float:
            cond = policy.encode(images, task, state=state)
            chunk = policy.act(cond, s["state"], hist, mode="sfm_only", seed=seed + i)
            return float(np.mean((chunk.actions[valid] - s["actions"][valid]) ** 2))

        errors["own_inputs"].append(error(s["images"], s["task"], history))
        errors["other_images"].append(error(other["images"], s["task"], history))
        errors["other_instruction"].append(error(s["images"], other["task"], history))
        errors["no_history"].append(error(s["images"], s["task"], None))
        if progress is not None:
            progress.update(1)
    return {"samples": int(count), **{f"sfm_mse_{name}": float(np.mean(v)) for name, v in errors.items()}}
