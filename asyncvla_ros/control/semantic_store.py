"""The latest committed semantic condition, shared between the semantic and control threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SemanticItem:
    """A committed semantic condition and where it came from."""

    condition: Any  # policy.SemanticCondition (opaque here, so this module needs no torch)
    seq: int  # sequence number assigned by the semantic side
    stamp_ns: int  # capture time of the observation it encodes
    instruction: str
    encode_ms: float = 0.0
    frame_stamps_ns: tuple[int, ...] = ()  # capture stamp of each camera's frame, in the policy's camera order
    state_stamp_ns: int = 0  # joint state in the prompt; 0 = none
    trigger: str = ""  # why it was encoded before the rate cap allowed (SemanticLoop.request_refresh); "" = on the rate


class LatestSemantics:
    """Holds the newest semantic condition.

    Invariant: the committed capture stamp never goes backwards, so a slow, late encode of an older
    observation can't replace a newer one. Readers get an immutable item and never see a half-updated one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: SemanticItem | None = None
        self.rejected_out_of_order = 0

    def commit(self, item: SemanticItem) -> bool:
        """Make `item` the latest; False (and counted) if it is older than what is held."""
        with self._lock:
            if self._item is not None and item.stamp_ns < self._item.stamp_ns:
                self.rejected_out_of_order += 1
                return False
            self._item = item
            return True

    def latest(self) -> SemanticItem | None:
        with self._lock:
            return self._item

    def clear(self) -> None:
        with self._lock:
            self._item = None
