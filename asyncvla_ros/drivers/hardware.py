"""Pieces every hardware backend shares (no rclpy, no torch): joint-limit checks on commands, loop
period statistics, and validation helpers for the per-joint tuples of the backend configs.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

from asyncvla_ros.drivers.base import DriverError


def per_joint(owner: str, name: str, values, n: int, *, positive: bool = False) -> tuple[float, ...]:
    """`values` as a tuple of n finite floats (n = joint count); ValueError naming `owner.name` otherwise."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{name} must be {n} numbers, got {values!r}") from None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{owner}.{name} needs {n} finite values (one per joint), got {values!r}")
    if positive and any(v <= 0 for v in out):
        raise ValueError(f"{owner}.{name} must be > 0 for every joint, got {values!r}")
    return out


def check_limits_config(owner: str, names, lower, upper) -> None:
    for j, lo, hi in zip(names, lower, upper):
        if not lo < hi:
            raise ValueError(f"{owner}: joint {j!r} has lower limit {lo} >= upper limit {hi}")


def checked_targets(names, positions, lower: np.ndarray, upper: np.ndarray, what: str) -> np.ndarray:
    """Position targets as float64, or DriverError when malformed or any joint is outside its limits.

    A command with one joint out of range is refused whole (nothing of it reaches the arm): the safety
    filter upstream clamps into the same limits, so a target outside them means something is wrong.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.shape != (len(names),) or not np.isfinite(positions).all():
        raise DriverError(f"{what} command: expected {len(names)} finite positions, got {positions}")
    outside = {n: round(float(p), 4) for n, p, lo, hi in zip(names, positions, lower, upper) if not lo <= p <= hi}
    if outside:
        raise DriverError(f"{what} command: joints {outside} outside their limits; refusing the whole command")
    return positions


class LoopStats:
    """Periods of a fixed-rate loop (s): the recent window's mean, percentiles and worst, and overruns."""

    def __init__(self, nominal_period_s: float, window: int = 2000) -> None:
        self.nominal_period_s = nominal_period_s
        self._periods: deque[float] = deque(maxlen=window)
        self._last: float | None = None
        self.iterations = 0
        self.overruns = 0  # periods longer than 1.5x nominal
        self._lock = threading.Lock()

    def tick(self, now_s: float) -> None:
        with self._lock:
            if self._last is not None:
                period = now_s - self._last
                self._periods.append(period)
                if period > 1.5 * self.nominal_period_s:
                    self.overruns += 1
            self._last = now_s
            self.iterations += 1

    def summary(self) -> dict:
        """{'count', 'mean_ms', 'p50_ms', 'p99_ms', 'max_ms', 'overruns'} over the recent window."""
        with self._lock:
            periods = np.asarray(self._periods, dtype=np.float64) * 1e3
            overruns = self.overruns
        if periods.size == 0:
            return {"count": 0, "mean_ms": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "overruns": overruns}
        return {"count": int(periods.size), "mean_ms": float(periods.mean()), "p50_ms": float(np.percentile(periods, 50)),
                "p99_ms": float(np.percentile(periods, 99)), "max_ms": float(periods.max()), "overruns": overruns}
