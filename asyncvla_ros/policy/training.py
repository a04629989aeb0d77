"""One-batch training computations shared by the trainer, the tests and the benchmarks.

A batch holds already-normalised tensors (the trainer's data pipeline normalises and applies the
time-misalignment and history-perturbation helpers from `losses`):

    inputs         backbone inputs from `VLBackbone.prepare` (the semantic observation, possibly older)
    state          (B, state_dim)
    history        (B, K, action_dim) and history_valid (B, K)   (absent when K = 0)
    actions        (B, L, action_dim) ground-truth chunk
    action_valid   (B, L) bool, False for padding past an episode's end or paused steps
    semantic_age_s (B,) how much older the observation is than the state, s (only for policies that read it)

In data-parallel training each process holds its rows of the step's global batch (a `Shard`). The
random draws inside the losses are made for the global batch from the generator every process holds
in the same state, and each keeps its rows, so a sample gets the same draws whatever the number of
processes; each loss is scaled so that the mean over processes, which DDP's gradient average takes,
is the loss of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from asyncvla_ros.policy.losses import noise_chunk_rows, noise_chunks, rater_loss, rater_pseudo_labels, unified_flow_loss


@dataclass(frozen=True)
class Shard:
    """One process's rows of a data-parallel step's global batch."""

    rows: slice  # this process's samples in the global batch
    batch_size: int  # samples in the global batch
    processes: int  # how many processes share it (DDP divides the summed gradients by it)
    sum_over_processes: Callable[[torch.Tensor], torch.Tensor]  # a tensor -> its sum over all processes


def flow_matching_loss(policy, batch: dict, generator: torch.Generator | None = None, sfm_only: bool = False,
                       sfm_fraction: float = 0.0, prefix_fraction: float = 0.0, cond=None, shard: Shard | None = None) -> torch.Tensor:
    """Stage 1: unified SFM/AFM loss (Algorithm 2) through backbone, action expert and decoder.

    `prefix_fraction`: share of samples with a clean-prefix mask (noise_chunks), prefixes up to the
    policy's `expert.continuation_prefix`. `cond`: the batch's already encoded prefix (a caller that also
    uses it elsewhere); None encodes here. `shard`: `batch` is these rows of a global batch; the loss is
    a mean over samples, so the mean over equal shards is the global one as it is.
    """
    if cond is None:
        cond = policy.backbone.encode(batch["inputs"])
    ctx = policy.action_context(cond, batch["state"], batch.get("history"), batch.get("history_valid"),
                                batch.get("semantic_age_s"))
    draw = dict(sfm_only=sfm_only, sfm_fraction=sfm_fraction, prefix_fraction=prefix_fraction,
                max_prefix=policy.config.expert.continuation_prefix)
    if shard is None:
        noised = noise_chunks(batch["actions"], generator, **draw)
    else:
        noised = noise_chunk_rows(batch["actions"], generator, shard.rows, shard.batch_size, **draw)
    velocity = policy.velocity(ctx, noised.noisy_actions, noised.token_time)
    return unified_flow_loss(velocity, noised.target_velocity, noised.mask, batch.get("action_valid"))


def rater_training_loss(policy, batch: dict, generator: torch.Generator | None = None, shard: Shard | None = None) -> torch.Tensor:
    """Stage 2: rater MSE against Eq. 6 pseudo-labels of the frozen model's own SFM chunks.

    `shard`: `batch` is these rows of a global batch. The MSE is over valid tokens, whose count differs
    between shards, so it is divided by the count over all processes (and multiplied by their number).
    """
    actions = batch["actions"]
    valid = batch.get("action_valid")
    with torch.no_grad():
        cond = policy.backbone.encode(batch["inputs"])
        ctx = policy.action_context(cond, batch["state"], batch.get("history"), batch.get("history_valid"),
                                    batch.get("semantic_age_s"))
        shape = actions.shape if shard is None else (shard.batch_size, *actions.shape[1:])
        noise = torch.randn(shape, device=actions.device, dtype=actions.dtype, generator=generator)
        if shard is not None:
            noise = noise[shard.rows]
        full = torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
        sfm = policy.sample(ctx, noise, full)
        labels = rater_pseudo_labels(sfm, actions, valid)
    confidence = policy.rater(cond.vl_embeddings, cond.key_valid, sfm)
    if shard is None:
        return rater_loss(confidence, labels, valid)
    w = torch.ones_like(labels) if valid is None else valid.to(labels.dtype)  # (n, L)
    tokens = shard.sum_over_processes(w.sum().detach()).clamp_min(1.0)  # valid tokens of the global batch
    return ((confidence - labels).square() * w).sum() * shard.processes / tokens
