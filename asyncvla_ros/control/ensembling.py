"""ACT-style temporal ensembling of overlapping action chunks.

The action node replans a full chunk every control tick, so up to L chunks predict the target of any
one tick. Following ACT (Zhao et al., 2023), the executed target is their weighted mean with weights
w_i = exp(-decay * i), i = 0 for the oldest prediction: a smaller decay folds new observations in faster.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TemporalEnsembler:
    """Keeps the chunks that still cover upcoming ticks and blends their predictions.

    A chunk added at tick k holds targets for ticks k, k+1, ..., k+L-1.

    Args:
        chunk_len: L.
        action_dim: values per target.
        decay: ACT's m in w_i = exp(-m i); 0 gives a plain mean.
    """

    def __init__(self, chunk_len: int, action_dim: int, decay: float = 0.1) -> None:
        if chunk_len <= 0 or action_dim <= 0:
            raise ValueError(f"TemporalEnsembler: chunk_len and action_dim must be > 0, got {chunk_len}, {action_dim}")
        if decay < 0 or not np.isfinite(decay):
            raise ValueError(f"TemporalEnsembler: decay must be finite and >= 0, got {decay}")
        self.chunk_len = chunk_len
        self.action_dim = action_dim
        self.decay = decay
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (start tick, (L, A)), oldest first

    def __len__(self) -> int:
        return len(self._chunks)

    def reset(self) -> None:
        """Forget every chunk (after a hold, old plans no longer match the robot)."""
        self._chunks.clear()

    def add(self, tick: int, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.chunk_len, self.action_dim):
            raise ValueError(f"chunk: expected shape ({self.chunk_len}, {self.action_dim}), got {actions.shape}")
        if self._chunks and tick <= self._chunks[-1][0]:
            raise ValueError(f"chunk ticks must increase: got {tick} after {self._chunks[-1][0]}")
        self._chunks.append((tick, actions))

    def target(self, tick: int) -> np.ndarray | None:
        """The blended target for `tick`, or None when no stored chunk covers it."""
        while self._chunks and self._chunks[0][0] + self.chunk_len <= tick:
            self._chunks.popleft()  # expired: every later tick is past its horizon too
        preds = [chunk[tick - start] for start, chunk in self._chunks if start <= tick]
        if not preds:
            return None
        weights = np.exp(-self.decay * np.arange(len(preds)))  # oldest first
        return (weights[:, None] * np.stack(preds)).sum(0) / weights.sum()
