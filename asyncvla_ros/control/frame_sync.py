"""Pick the newest set of camera frames that belong together.

The semantic node encodes one frame per camera. A set is usable when its frames were captured within
`max_skew_s` of each other and the oldest is younger than `max_age_s`; frames past the age limit are
dropped and counted, never encoded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FrameSyncConfig:
    camera_names: tuple[str, ...]
    max_skew_s: float = 0.05  # frames of one set captured at most this far apart
    max_age_s: float = 0.5  # frames older than this (capture stamp vs now) are dropped
    depth: int = 4  # frames kept per camera while waiting for partners

    def __post_init__(self) -> None:
        self.camera_names = tuple(self.camera_names)
        if not self.camera_names:
            raise ValueError("FrameSyncConfig.camera_names must not be empty")
        for name in ("max_skew_s", "max_age_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FrameSyncConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.depth < 1:
            raise ValueError(f"FrameSyncConfig.depth must be >= 1, got {self.depth!r}")


@dataclass
class FrameSet:
    frames: list[Any]  # one per camera, in camera_names order
    stamps_ns: list[int]

    @property
    def stamp_ns(self) -> int:
        """The set's capture stamp: its oldest frame, so its age is never understated."""
        return min(self.stamps_ns)


@dataclass
class FrameSyncStats:
    received: int = 0
    dropped_stale: int = 0  # frames that aged out unused
    sets_taken: int = 0
    last_reason: str = "no frames yet"
    per_camera: dict[str, int] = field(default_factory=dict)


class FrameSynchronizer:
    """Not thread-safe: callers serialise `add` and `take` (the semantic node holds one lock)."""

    def __init__(self, config: FrameSyncConfig) -> None:
        self.config = config
        self._frames = {name: deque(maxlen=config.depth) for name in config.camera_names}
        self._last_taken_ns = -1
        self.stats = FrameSyncStats(per_camera={n: 0 for n in config.camera_names})

    def add(self, camera: str, stamp_ns: int, frame: Any) -> None:
        if camera not in self._frames:
            raise ValueError(f"unknown camera {camera!r}; configured cameras are {list(self._frames)}")
        buf = self._frames[camera]
        if buf and stamp_ns <= buf[-1][0]:
            return  # duplicate or out-of-order frame: keep the buffer sorted by stamp
        if len(buf) == buf.maxlen and buf[0][0] > self._last_taken_ns:
            self.stats.dropped_stale += 1  # pushed out unused
        buf.append((stamp_ns, frame))
        self.stats.received += 1
        self.stats.per_camera[camera] += 1

    def _drop_old(self, now_ns: int) -> None:
        limit = now_ns - int(self.config.max_age_s * 1e9)
        for buf in self._frames.values():
            while buf and buf[0][0] < limit:
                stamp, _ = buf.popleft()
                if stamp > self._last_taken_ns:
                    self.stats.dropped_stale += 1

    def take(self, now_ns: int, stamp_ns: int | None = None) -> FrameSet | None:
        """The newest unused set within skew and age, or None (see `stats.last_reason`).

        With `stamp_ns`, only the set whose capture stamp (its oldest frame) is `stamp_ns`: the set a
        recorded semantic refresh encoded, looked up by a re-run.
        """
        self._drop_old(now_ns)
        names = self.config.camera_names
        missing = [n for n in names if not self._frames[n]]
        if missing:
            self.stats.last_reason = f"no fresh frame from {missing}"
            return None
        skew_ns = int(self.config.max_skew_s * 1e9)
        anchor_cam = names[0]
        for anchor_stamp, anchor_frame in reversed(self._frames[anchor_cam]):
            if anchor_stamp <= self._last_taken_ns:
                break
            chosen = [(anchor_stamp, anchor_frame)]
            for other in names[1:]:
                best = min(self._frames[other], key=lambda sf: abs(sf[0] - anchor_stamp))
                if abs(best[0] - anchor_stamp) > skew_ns:
                    break
                chosen.append(best)
            else:
                stamps = [s for s, _ in chosen]
                if min(stamps) <= self._last_taken_ns or (stamp_ns is not None and min(stamps) != stamp_ns):
                    continue
                self._last_taken_ns = max(stamps)
                self.stats.sets_taken += 1
                self.stats.last_reason = "ok"
                return FrameSet(frames=[f for _, f in chosen], stamps_ns=stamps)
        self.stats.last_reason = f"no new frame set within {self.config.max_skew_s * 1e3:.0f} ms skew"
        return None
