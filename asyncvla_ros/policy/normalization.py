"""State and action normalisation, with statistics computed from data and stored with the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


@dataclass
class FeatureStats:
    """Per-dimension mean and standard deviation of one feature (in its own units)."""

    mean: list[float]
    std: list[float]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(f"FeatureStats: mean has {len(self.mean)} dims but std has {len(self.std)}")
        bad = [s for s in self.std if not (np.isfinite(s) and s > 0)]
        if bad or not all(np.isfinite(self.mean)):
            raise ValueError(f"FeatureStats: std must be finite and > 0 and mean finite, got std {self.std}")

    @classmethod
    def identity(cls, dim: int) -> "FeatureStats":
        return cls(mean=[0.0] * dim, std=[1.0] * dim)

    @classmethod
    def from_data(cls, data: np.ndarray, min_std: float = 1e-2) -> "FeatureStats":
        """Statistics of (N, D) samples; `min_std` keeps a nearly constant dimension from exploding."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or len(data) == 0 or not np.isfinite(data).all():
            raise ValueError(f"FeatureStats.from_data needs finite (N, D) samples with N > 0, got shape {data.shape}")
        return cls(mean=data.mean(0).tolist(), std=np.maximum(data.std(0), min_std).tolist())


@dataclass
class Normalizer:
    """Maps state and action to zero-mean unit-variance coordinates and back.

    `delta` is set for policies whose chunks are relative to the current state (ActionExpertConfig.
    delta_actions): the statistics of a[t+i] - s[t]. The chunk then goes through `delta`, while the
    executed-action history (absolute commands) still goes through `action`.
    """

    state: FeatureStats
    action: FeatureStats
    delta: FeatureStats | None = None

    @classmethod
    def identity(cls, state_dim: int, action_dim: int) -> "Normalizer":
        return cls(FeatureStats.identity(state_dim), FeatureStats.identity(action_dim))

    @classmethod
    def from_dict(cls, data: dict) -> "Normalizer":
        delta = FeatureStats(**data["delta"]) if data.get("delta") else None
        return cls(FeatureStats(**data["state"]), FeatureStats(**data["action"]), delta)

    def normalize_chunk(self, actions: Array, state: Array) -> Array:
        """A chunk (..., L, A) in robot units -> the policy's coordinates; `state` (..., A) is the state it
        was planned from (used only by delta policies)."""
        if self.delta is None:
            return self.normalize_action(actions)
        return self._apply(actions - state[..., None, :], self.delta, inverse=False)

    def unnormalize_chunk(self, x: Array, state: Array) -> Array:
        """Inverse of `normalize_chunk`."""
        if self.delta is None:
            return self.unnormalize_action(x)
        return self._apply(x, self.delta, inverse=True) + state[..., None, :]

    @staticmethod
    def _apply(x: Array, stats: FeatureStats, inverse: bool) -> Array:
        if isinstance(x, torch.Tensor):
            mean = torch.tensor(stats.mean, dtype=x.dtype, device=x.device)
            std = torch.tensor(stats.std, dtype=x.dtype, device=x.device)
        else:
            mean = np.asarray(stats.mean, dtype=np.float32)
            std = np.asarray(stats.std, dtype=np.float32)
        return x * std + mean if inverse else (x - mean) / std

    def normalize_state(self, x: Array) -> Array:
        return self._apply(x, self.state, inverse=False)

    def normalize_action(self, x: Array) -> Array:
        return self._apply(x, self.action, inverse=False)

    def unnormalize_action(self, x: Array) -> Array:
        return self._apply(x, self.action, inverse=True)
