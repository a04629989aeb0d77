"""Confidence-triggered semantic refresh: a falling rater confidence asks for a new encode.

The semantic loop encodes at a base rate (a large VLM manages about 1 Hz); between encodes the action
side plans from cached semantics. The rater's per-step confidence comes with every chunk for free. When
a chunk's confidence (its mean, or its minimum) drops `drop` below its recent level (the median over the
last `window` chunks), the semantics may no longer fit the scene, and the trigger fires: the next
matched frame set is encoded at once. After firing it stays quiet for `hold_off_s`, so one scene change
costs one extra encode, not one per tick.

No rclpy: the action node publishes a fired trigger on `semantic_refresh` (RefreshRequest), the
co-located graph hands it over in memory, and the closed-loop eval calls the semantic loop directly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.parameters import check_fields, param

STATISTICS = ("mean", "min")


@dataclass
class RefreshTriggerConfig:
    trigger_drop: float = param(0.0, "ask for a semantic refresh when a chunk's confidence falls this far below its recent "
                                "median; 0 = never", low=0.0, high=1.0)
    trigger_statistic: str = param("mean", "a chunk's confidence: the mean or the minimum over its steps", choices=STATISTICS)
    trigger_window: int = param(20, "chunks the recent median runs over", low=2, high=10000)
    trigger_hold_off_s: float = param(1.0, "no second request for this long after one, s", low=0.0, high=600.0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class RefreshRequestInfo:
    stamp_ns: int
    confidence: float  # the chunk's statistic that fired
    recent: float  # the recent median it fell below
    reason: str


class RefreshTrigger:
    """Fed every planned chunk's confidence (one thread); `observe` returns a request when it fires."""

    def __init__(self, config: RefreshTriggerConfig) -> None:
        self.config = config
        self._recent: deque[float] = deque(maxlen=config.trigger_window)
        self._last_fire_ns: int | None = None
        self.fired = 0

    @property
    def enabled(self) -> bool:
        return self.config.trigger_drop > 0

    def observe(self, now_ns: int, confidence: np.ndarray) -> RefreshRequestInfo | None:
        if not self.enabled:  # off (the default): nothing to keep on the control path
            return None
        c = self.config
        value = float(np.min(confidence) if c.trigger_statistic == "min" else np.mean(confidence))
        full = len(self._recent) == self._recent.maxlen
        recent = float(np.median(self._recent)) if self._recent else float("nan")
        self._recent.append(value)
        if not (full and value < recent - c.trigger_drop):
            return None
        if self._last_fire_ns is not None and 0 <= now_ns - self._last_fire_ns < c.trigger_hold_off_s * 1e9:
            return None
        self._last_fire_ns = int(now_ns)
        self.fired += 1
        return RefreshRequestInfo(int(now_ns), value, recent,
                                  f"chunk {c.trigger_statistic} confidence {value:.2f} < recent median {recent:.2f} - {c.trigger_drop:g}")
