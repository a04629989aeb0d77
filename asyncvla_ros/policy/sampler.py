"""One flow-matching sampler for SFM and AFM (AsyncVLA, Algorithm 1).

Time runs from tau = 1 (noise) to tau = 0 (action) in `num_steps` Euler steps ``a <- a - delta * v``.
Only masked tokens move; unmasked tokens are carried unchanged (bit-identical) and serve as context.
SFM is this same call with every token masked, started from pure noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def flow_sample(
    velocity_fn: VelocityFn,
    noise: torch.Tensor,
    mask: torch.Tensor,
    init: torch.Tensor | None = None,
    num_steps: int = 10,
) -> torch.Tensor:
    """Integrate the flow for the masked tokens.

    Args:
        velocity_fn: (actions (B, L, A), token_time (B, L)) -> velocity (B, L, A).
        noise: (B, L, A) starting noise for masked tokens.
        mask: (B, L) bool/0-1; 1 = regenerate this token.
        init: (B, L, A) actions kept for unmasked tokens (the SFM chunk in AFM); None for SFM.
        num_steps: Euler steps.

    Returns:
        (B, L, A) actions at tau = 0.
    """
    if num_steps <= 0:
        raise ValueError(f"num_steps must be positive, got {num_steps}")
    if init is None and not bool(mask.bool().all()):
        raise ValueError("flow_sample: unmasked tokens need `init` actions to carry (SFM masks every token)")
    m = mask.bool().unsqueeze(-1)  # (B, L, 1)
    actions = noise if init is None else torch.where(m, noise, init)
    token_mask = mask.to(noise.dtype)
    delta = 1.0 / num_steps
    for i in range(num_steps):
        tau = 1.0 - i * delta
        velocity = velocity_fn(actions, tau * token_mask)
        actions = torch.where(m, actions - delta * velocity, actions)
    return actions
