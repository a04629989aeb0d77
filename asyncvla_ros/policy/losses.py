"""Training objectives: unified SFM/AFM flow matching (Alg. 2), rater pseudo-labels (Eq. 6), and the
semantic-action decoupling paper's stale-semantics helpers.

Everything here is a pure function of tensors and a `torch.Generator`, so the trainer decides batching,
devices and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class NoisedChunk:
    """One draw of Algorithm 2's noising for a batch of action chunks."""

    noisy_actions: torch.Tensor  # (B, L, A): a - tau (a - n) * m
    target_velocity: torch.Tensor  # (B, L, A): u = n - a
    mask: torch.Tensor  # (B, L) bool: tokens that were noised (and carry loss)
    token_time: torch.Tensor  # (B, L): tau * m_l, what the time embedding sees


def noise_chunks(actions: torch.Tensor, generator: torch.Generator | None = None, sfm_only: bool = False,
                 sfm_fraction: float = 0.0, prefix_fraction: float = 0.0, max_prefix: int = 0) -> NoisedChunk:
    """Algorithm 2, lines 4-7, per sample: y~U(0,1), m_l~Bernoulli(y), tau~Beta(1.5,1), n~N(0,I).

    Args:
        actions: (B, L, A) normalised ground-truth chunks.
        generator: random source (on the actions' device).
        sfm_only: mask every token (plain SFM training, the paper's "w/o unified training" ablation).
        sfm_fraction: besides Algorithm 2's draw, this share of the samples gets every token masked
            (an SFM sample). Algorithm 2 alone masks a whole chunk with probability 1/(L+1); a larger
            share makes more samples predict from the observation with no clean neighbour to copy.
        prefix_fraction: this share of the samples instead gets a contiguous clean prefix of k ~ U{1, ...,
            max_prefix} steps and every later step masked: chunk continuation (policy.act(context=...)),
            the steps that run while a plan is computed given as context, as training-time RTC does.
        max_prefix: the longest such prefix (< L).
    """
    B, L, _ = actions.shape
    dev, dt = actions.device, actions.dtype
    if sfm_only:
        mask = torch.ones(B, L, dtype=torch.bool, device=dev)
    else:
        y = torch.rand(B, 1, device=dev, generator=generator)
        mask = torch.rand(B, L, device=dev, generator=generator) < y
        if sfm_fraction:
            mask = mask | (torch.rand(B, 1, device=dev, generator=generator) < sfm_fraction)
        if prefix_fraction:
            if not 0 < max_prefix < L:
                raise ValueError(f"noise_chunks: max_prefix must be in [1, {L - 1}] for prefix masks, got {max_prefix}")
            k = torch.randint(1, max_prefix + 1, (B, 1), device=dev, generator=generator)
            prefix = torch.arange(L, device=dev)[None] >= k
            mask = torch.where(torch.rand(B, 1, device=dev, generator=generator) < prefix_fraction, prefix, mask)
    # Beta(1.5, 1) by inversion: its CDF is x^1.5, so x = U^(1/1.5); emphasises tau near 1 (noisy).
    tau = torch.rand(B, 1, device=dev, generator=generator).pow(1.0 / 1.5).to(dt)  # (B, 1)
    noise = torch.randn(actions.shape, device=dev, dtype=dt, generator=generator)
    m = mask.unsqueeze(-1).to(dt)  # (B, L, 1)
    noisy = actions - tau.unsqueeze(-1) * (actions - noise) * m
    return NoisedChunk(noisy, noise - actions, mask, tau * mask.to(dt))


def noise_chunk_rows(actions: torch.Tensor, generator: torch.Generator | None, rows: slice, batch_size: int,
                     **kwargs) -> NoisedChunk:
    """`noise_chunks` of `rows` (their (n, L, A) `actions`) of a `batch_size` batch, for data-parallel training.

    The draws are made for the whole batch (their values depend on its shape alone), so each sample gets
    the same mask, time and noise as in a one-process run; the other rows' actions are zeros, unused.
    """
    full = actions.new_zeros((batch_size, *actions.shape[1:]))  # (B, L, A)
    full[rows] = actions
    n = noise_chunks(full, generator, **kwargs)
    return NoisedChunk(n.noisy_actions[rows], n.target_velocity[rows], n.mask[rows], n.token_time[rows])


def unified_flow_loss(
    predicted_velocity: torch.Tensor, target_velocity: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 4: squared velocity error on masked (and valid) tokens.

    The paper's (1/B) sum ||(v - u) * m||^2 is divided by L * A as well, so the scale (and the
    learning rate) does not depend on chunk length or action size; with an all-ones mask and no
    padding this is exactly the plain SFM mean-squared error.

    Args:
        predicted_velocity, target_velocity: (B, L, A)
        mask: (B, L) tokens noised in this draw.
        valid: (B, L) tokens that exist (False for padding past an episode's end or paused steps).
    """
    weight = mask.to(predicted_velocity.dtype)
    if valid is not None:
        weight = weight * valid.to(predicted_velocity.dtype)
    B, L, A = predicted_velocity.shape
    err = (predicted_velocity - target_velocity).square() * weight.unsqueeze(-1)
    return err.sum() / (B * L * A)


def rater_pseudo_labels(
    sfm_actions: torch.Tensor,
    target_actions: torch.Tensor,
    valid: torch.Tensor | None = None,
    alpha: float = 0.01,
    beta: float = 0.98,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Eq. 6: q_l = 1 - alpha - beta (e_l - min e) / (max e - min e + eps), per chunk.

    e_l is the per-token MSE of the SFM chunk against ground truth; min/max run over the chunk's valid
    tokens. Labels lie in [1 - alpha - beta, 1 - alpha]: the most accurate token gets 0.99, the least 0.01.

    Returns:
        (B, L) labels (invalid tokens get 1 - alpha; mask them out of the loss).
    """
    err = (sfm_actions - target_actions).square().mean(dim=-1)  # (B, L)
    if valid is None:
        valid = torch.ones_like(err, dtype=torch.bool)
    lo = err.masked_fill(~valid, float("inf")).amin(dim=1, keepdim=True)
    hi = err.masked_fill(~valid, float("-inf")).amax(dim=1, keepdim=True)
    labels = 1.0 - alpha - beta * (err - lo) / (hi - lo + eps)
    return labels.masked_fill(~valid, 1.0 - alpha)


def rater_loss(confidence: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between rater output and pseudo-labels over valid tokens."""
    err = (confidence - labels).square()
    if valid is None:
        return err.mean()
    w = valid.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def sample_semantic_delay(batch_size: int, chunk_len: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Time-misalignment training: a delay d ~ U{0, ..., L} control steps per sample.

    The action target at step t is paired with the observation from step max(episode_start, t - d),
    i.e. semantics up to one chunk old, as the action node sees them at deployment.
    """
    return torch.randint(0, chunk_len + 1, (batch_size,), generator=generator)


def misaligned_index(step: torch.Tensor, episode_start: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """Index of the (older) observation whose semantics condition the action target at `step`."""
    return torch.maximum(step - delay, episode_start)


def perturb_history(history: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian-perturbed ground-truth history (normalised units), approximating executed-vs-expert mismatch."""
    if std < 0:
        raise ValueError(f"perturb_history: std must be >= 0, got {std}")
    noise = torch.randn(history.shape, device=history.device, dtype=history.dtype, generator=generator)
    return history + std * noise
