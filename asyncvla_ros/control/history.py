"""The executed-action history the action module is conditioned on (last K commands).

Each entry is stamped with its control tick's time, so that what the safety filter actually let
through for that tick (clamped, maybe) can replace the command once it is known (`replace`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class _Entry:
    action: np.ndarray  # (action_dim,) float32
    stamp_ns: int  # the tick's time (the stamp of the command it holds)
    answered: bool = False  # `replace` has put the safety filter's answer in it


class ActionHistory:
    """A ring of the last `length` executed actions, oldest first."""

    def __init__(self, length: int, action_dim: int) -> None:
        self.length = length
        self.action_dim = action_dim
        self._entries: deque[_Entry] = deque(maxlen=max(length, 1))

    def _checked(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.action_dim,) or not np.isfinite(action).all():
            raise ValueError(f"history action: expected {self.action_dim} finite values, got {action}")
        return action

    def append(self, action: np.ndarray, stamp_ns: int = 0) -> None:
        action = self._checked(action)
        if self.length:
            self._entries.append(_Entry(action, int(stamp_ns)))

    def replace(self, stamp_ns: int, action: np.ndarray) -> bool:
        """Put `action` in place of the newest entry stamped `stamp_ns`; False when there is none
        (it has left the history, or came from before a hold)."""
        action = self._checked(action)
        for entry in reversed(self._entries):
            if entry.stamp_ns == int(stamp_ns):
                entry.action, entry.answered = action, True
                return True
        return False

    def stamps(self) -> list[int]:
        """Each entry's tick stamp, oldest first."""
        return [e.stamp_ns for e in self._entries]

    def answered(self) -> list[bool]:
        """Per entry, oldest first: whether `replace` has put the filter's answer in it."""
        return [e.answered for e in self._entries]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def array(self) -> np.ndarray:
        """(k, action_dim), k <= length."""
        if not self._entries:
            return np.zeros((0, self.action_dim), np.float32)
        return np.stack([e.action for e in self._entries])
