"""One-batch training computations shared by the trainer, the tests and the benchmarks.

A batch holds already-normalised tensors (the trainer's data pipeline normalises and applies the
time-misalignment and history-perturbation helpers from `losses`):

    inputs         backbone inputs from `VLBackbone.prepare` (the semantic observation, possibly older)
    state          (B, state_dim)
    history        (B, K, action_dim) and history_valid (B, K)   (absent when K = 0)
    actions        (B, L, action_dim) ground-truth chunk
    action_valid   (B, L) bool, False for padding past an episode's end or paused steps
    semantic_age_s (B,) how much older the observation is than the state, s (only for policies that read it)
"""

from __future__ import annotations

import torch

from asyncvla_ros.policy.losses import noise_chunks, rater_loss, rater_pseudo_labels, unified_flow_loss


def flow_matching_loss(policy, batch: dict, generator: torch.Generator | None = None, sfm_only: bool = False,
                       sfm_fraction: float = 0.0, prefix_fraction: float = 0.0, cond=None) -> torch.Tensor:
    """Stage 1: unified SFM/AFM loss (Algorithm 2) through backbone, action expert and decoder.

    `prefix_fraction`: share of samples with a clean-prefix mask (noise_chunks), prefixes up to the
    policy's `expert.continuation_prefix`. `cond`: the batch's already encoded prefix (a caller that also
    uses it elsewhere); None encodes here.
    """
    if cond is None:
        cond = policy.backbone.encode(batch["inputs"])
    ctx = policy.action_context(cond, batch["state"], batch.get("history"), batch.get("history_valid"),
                                batch.get("semantic_age_s"))
    noised = noise_chunks(batch["actions"], generator, sfm_only=sfm_only, sfm_fraction=sfm_fraction,
                          prefix_fraction=prefix_fraction, max_prefix=policy.config.expert.continuation_prefix)
    velocity = policy.velocity(ctx, noised.noisy_actions, noised.token_time)
    return unified_flow_loss(velocity, noised.target_velocity, noised.mask, batch.get("action_valid"))


def rater_training_loss(policy, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stage 2: rater MSE against Eq. 6 pseudo-labels of the frozen model's own SFM chunks."""
    actions = batch["actions"]
    with torch.no_grad():
        cond = policy.backbone.encode(batch["inputs"])
        ctx = policy.action_context(cond, batch["state"], batch.get("history"), batch.get("history_valid"),
                                    batch.get("semantic_age_s"))
        noise = torch.randn(actions.shape, device=actions.device, dtype=actions.dtype, generator=generator)
        full = torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
        sfm = policy.sample(ctx, noise, full)
        labels = rater_pseudo_labels(sfm, actions, batch.get("action_valid"))
    confidence = policy.rater(cond.vl_embeddings, cond.key_valid, sfm)
    return rater_loss(confidence, labels, batch.get("action_valid"))
