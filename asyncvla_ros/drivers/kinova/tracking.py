"""Joint velocity commands that follow position targets (no I/O; one call per control tick).

Per joint the command is the target's own velocity (feed-forward, estimated by the caller from
successive targets) plus a correction toward the target: the smaller of the proportional demand
`gain * |error|` and the speed from which the joint can still stop at the target (`sqrt(2 a |error|)`).
It is clipped to the speed limit, then changes by at most `a * dt` per tick, is cut to the speed from which the joint can stop before each
position limit (and that does not cross it within one tick), and finally clipped to the speed limit, so the last clip bounds every command.
"""

from __future__ import annotations

import numpy as np


class VelocityTracker:
    def __init__(self, speed_limit_rad_s, accel_limit_rad_s2: float, gain_per_s: float, tolerance_rad: float,
                 lower_rad, upper_rad, dt_s: float) -> None:
        self.vmax = np.asarray(speed_limit_rad_s, dtype=np.float64)
        self.accel = float(accel_limit_rad_s2)
        self.gain = float(gain_per_s)
        self.tolerance = float(tolerance_rad)
        self.lower = np.asarray(lower_rad, dtype=np.float64)
        self.upper = np.asarray(upper_rad, dtype=np.float64)
        self.dt = float(dt_s)

    def step(self, position_rad: np.ndarray, target_rad: np.ndarray, previous_rad_s: np.ndarray,
             feedforward_rad_s: np.ndarray | None = None) -> np.ndarray:
        """The next velocity command (rad/s) for each joint; |result| <= speed limit always.

        Args:
            feedforward_rad_s: the target's velocity (None or zeros for a fixed target).
        """
        error = target_rad - position_rad
        distance = np.abs(error)
        speed = np.minimum(self.gain * distance, np.sqrt(2.0 * self.accel * distance))
        speed[distance < self.tolerance] = 0.0
        desired = np.sign(error) * speed
        if feedforward_rad_s is not None:
            desired = desired + feedforward_rad_s
        desired = np.clip(desired, -self.vmax, self.vmax)
        dv = self.accel * self.dt
        v = np.clip(desired, previous_rad_s - dv, previous_rad_s + dv)
        # Never head into a position limit faster than the joint can stop before it.
        room_up = np.maximum(self.upper - position_rad, 0.0)
        room_down = np.maximum(position_rad - self.lower, 0.0)
        # (and never past it within one tick, which the continuous braking bound alone allows)
        v = np.minimum(v, np.minimum(np.sqrt(2.0 * self.accel * room_up), room_up / self.dt))
        v = np.maximum(v, -np.minimum(np.sqrt(2.0 * self.accel * room_down), room_down / self.dt))
        return np.clip(v, -self.vmax, self.vmax)
