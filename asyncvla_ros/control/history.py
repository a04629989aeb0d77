"""The executed-action history the action module is conditioned on (last K commands).

Each entry is stamped with its control tick's time, so that what the safety filter actually let
through for that tick (clamped, maybe) can replace the command once it is known (`replace`).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class ActionHistory:
    """A ring of the last `length` executed actions, oldest first."""

    def __init__(self, length: int, action_dim: int) -> None:
        self.length = length
        self.action_dim = action_dim
        self._items: deque[np.ndarray] = deque(maxlen=max(length, 1))
        self._stamps: deque[int] = deque(maxlen=max(length, 1))
        self._answered: deque[bool] = deque(maxlen=max(length, 1))  # entry replaced by `replace`

    def _checked(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.action_dim,) or not np.isfinite(action).all():
            raise ValueError(f"history action: expected {self.action_dim} finite values, got {action}")
        return action

    def append(self, action: np.ndarray, stamp_ns: int = 0) -> None:
        action = self._checked(action)
        if self.length:
            self._items.append(action)
            self._stamps.append(int(stamp_ns))
            self._answered.append(False)

    def replace(self, stamp_ns: int, action: np.ndarray) -> bool:
        """Put `action` in place of the newest entry stamped `stamp_ns`; False when there is none
        (it has left the history, or came from before a hold)."""
        action = self._checked(action)
        for i in range(len(self._stamps) - 1, -1, -1):
            if self._stamps[i] == int(stamp_ns):
                self._items[i] = action
                self._answered[i] = True
                return True
        return False

    def stamps(self) -> list[int]:
        """Each entry's tick stamp, oldest first."""
        return list(self._stamps)

    def answered(self) -> list[bool]:
        """Per entry, oldest first: whether `replace` has put the filter's answer in it."""
        return list(self._answered)

    def clear(self) -> None:
        self._items.clear()
        self._stamps.clear()
        self._answered.clear()

    def __len__(self) -> int:
        return len(self._items)

    def array(self) -> np.ndarray:
        """(k, action_dim), k <= length."""
        if not self._items:
            return np.zeros((0, self.action_dim), np.float32)
        return np.stack(self._items)
