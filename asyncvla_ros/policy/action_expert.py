"""The action side of AsyncVLA: how state, history and noisy actions become decoder tokens.

- Asynchronous time embedding (AsyncVLA, Sec. 3.1): each action token l carries its own flow time
  tau * m_l; the sinusoidal embedding S(tau * m_l) is concatenated with a linear projection P(a_l) of
  the noisy action and an MLP maps the 2d vector to the decoder width d. Unmasked tokens therefore
  read as "clean" (time 0) while masked ones read as noisy.
- Robot-state token: the current state, projected to d. It is fresh every control step, unlike the
  cached prefix, which may be several control steps old. Where configured (`semantic_age_max_s`), the
  prefix's age is added to it: a sinusoidal embedding of age / max through a zero-initialised linear
  map, so a policy given the input starts out planning exactly as it did without it. Its periods
  (AGE_PERIODS) are long next to a control tick: ages between the ticks trained on (a graph's stamps
  fall anywhere) embed between their neighbours, not at random.
- History tokens (semantic-action decoupling paper): the last K executed actions, projected to d with
  a learned per-slot embedding; slots before the start of an episode hold a learned "empty" embedding.
- Velocity head: a linear map from the decoder's output at each action token to the action space.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from asyncvla_ros.policy.config import ActionExpertConfig


def sinusoidal_embedding(t: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """Sin/cos features of scalar times t (...,) → (..., dim), periods spaced geometrically."""
    if dim % 2:
        raise ValueError(f"sinusoidal embedding dim must be even, got {dim}")
    fraction = torch.linspace(0.0, 1.0, dim // 2, device=t.device, dtype=torch.float32)
    period = min_period * (max_period / min_period) ** fraction  # (dim/2,)
    angle = t.float().unsqueeze(-1) * (2 * math.pi / period)  # (..., dim/2)
    return torch.cat([angle.sin(), angle.cos()], dim=-1).to(t.dtype)


def zero_linear(d_in: int, d_out: int) -> nn.Linear:
    """A linear map whose weight and bias start at zero: an added input or head that changes nothing
    until trained."""
    layer = nn.Linear(d_in, d_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


AGE_PERIODS = (0.5, 8.0)  # shortest and longest period of the semantic-age embedding, in units of the largest age


class ActionExpert(nn.Module):
    """Token embeddings and velocity head around the shared VLM decoder.

    Args:
        config: action-side sizes.
        hidden_size: the decoder width d.
    """

    def __init__(self, config: ActionExpertConfig, hidden_size: int) -> None:
        super().__init__()
        self.config = config
        d = hidden_size
        self.hidden_size = d
        self.action_in = nn.Linear(config.action_dim, d)  # P(a)
        self.time_action_mlp = nn.Sequential(nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.state_in = nn.Linear(config.state_dim, d)
        K = config.history_len
        if K:
            self.history_in = nn.Linear(config.action_dim, d)
            self.history_slot = nn.Parameter(torch.randn(K, d) * 0.02)  # which of the K past steps
            self.history_empty = nn.Parameter(torch.randn(d) * 0.02)  # a slot before the episode began
        self.velocity_out = nn.Linear(d, config.action_dim)
        self.age_in = zero_linear(d, d) if config.semantic_age_max_s else None

    def add_semantic_age_input(self, max_age_s: float) -> None:
        """Give an expert built without it the semantic-age input (fine-tuning into one); it changes no
        output until trained, the map being zero."""
        if self.age_in is not None:
            raise ValueError("the action expert already reads the semantic age")
        self.config = dataclasses.replace(self.config, semantic_age_max_s=float(max_age_s))
        self.age_in = zero_linear(self.hidden_size, self.hidden_size).to(self.velocity_out.weight)

    @property
    def num_context_tokens(self) -> int:
        return 1 + self.config.history_len

    def context_tokens(self, state: torch.Tensor, history: torch.Tensor | None, history_valid: torch.Tensor | None,
                       semantic_age_s: torch.Tensor | None = None) -> torch.Tensor:
        """State and history tokens.

        Args:
            state: (B, state_dim) normalised state.
            history: (B, K, action_dim) normalised executed actions, oldest first; ignored when K = 0.
            history_valid: (B, K) bool, False for slots with no executed action yet.
            semantic_age_s: (B,) age of the semantic condition, s; None = fresh (0). Unused without the input.

        Returns:
            (B, 1 + K, d)
        """
        tokens = self.state_in(state)  # (B, d)
        if self.age_in is not None:
            age = torch.zeros(state.shape[0], device=state.device) if semantic_age_s is None else semantic_age_s.to(state.device)
            fraction = (age.float() / self.config.semantic_age_max_s).clamp(0.0, 1.0)
            tokens = tokens + self.age_in(sinusoidal_embedding(fraction, self.hidden_size, *AGE_PERIODS).to(tokens.dtype))
        tokens = tokens.unsqueeze(1)  # (B, 1, d)
        if not self.config.history_len:
            return tokens
        hist = self.history_in(history) + self.history_slot  # (B, K, d)
        empty = (self.history_empty + self.history_slot).expand_as(hist)  # (B, K, d)
        hist = torch.where(history_valid.unsqueeze(-1), hist, empty)
        return torch.cat([tokens, hist], dim=1)

    def action_tokens(self, noisy_actions: torch.Tensor, token_time: torch.Tensor) -> torch.Tensor:
        """Asynchronous time-embedded action tokens: MLP([S(tau * m_l), P(a_l)]).

        Args:
            noisy_actions: (B, L, action_dim)
            token_time: (B, L) per-token flow time tau * m_l in [0, 1]

        Returns:
            (B, L, d)
        """
        c = self.config
        time_emb = sinusoidal_embedding(token_time, self.hidden_size, c.time_min_period, c.time_max_period)
        h = torch.cat([time_emb.to(noisy_actions.dtype), self.action_in(noisy_actions)], dim=-1)  # (B, L, 2d)
        return self.time_action_mlp(h)

    def velocity(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L, d) decoder output → (B, L, action_dim) predicted velocity."""
        return self.velocity_out(hidden)
