"""The executed-action history the action module is conditioned on (last K commands)."""

from __future__ import annotations

from collections import deque

import numpy as np


class ActionHistory:
    """A ring of the last `length` executed actions, oldest first."""

    def __init__(self, length: int, action_dim: int) -> None:
        self.length = length
        self.action_dim = action_dim
        self._items: deque[np.ndarray] = deque(maxlen=max(length, 1))

    def append(self, action: np.ndarray) -> None:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.action_dim,) or not np.isfinite(action).all():
            raise ValueError(f"history action: expected {self.action_dim} finite values, got {action}")
        if self.length:
            self._items.append(action)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def array(self) -> np.ndarray:
        """(k, action_dim), k <= length."""
        if not self._items:
            return np.zeros((0, self.action_dim), np.float32)
        return np.stack(self._items)
