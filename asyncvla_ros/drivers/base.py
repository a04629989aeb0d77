"""The interface every driver backend implements, mirroring the lifecycle of the driver node:

    configure  -> connect()     open the link (serial port, SDK, simulator); read-only afterwards
    activate   -> enable()      motion allowed (torque on); commands are applied
    deactivate -> disable()     no more motion (torque off or hold); commands are ignored
    cleanup    -> disconnect()  close the link
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


class DriverError(RuntimeError):
    """The backend cannot do what was asked (not connected, link lost, bad command); says why."""


class LinkHealth:
    """Failed calls to an arm in a row; after `max_consecutive` of them (or one fatal one) the link is lost.

    Not thread-safe: the backend calls it under its own lock. `error` says why the link was lost and
    stays set until `reset()` (a new connect).
    """

    def __init__(self, max_consecutive: int, what: str) -> None:
        self.max_consecutive, self.what = max_consecutive, what  # what: "calls", "bus transactions", ...
        self.failures = 0
        self.error: str | None = None

    def reset(self) -> None:
        self.failures, self.error = 0, None

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, reason: str, fatal: bool = False) -> bool:
        """Count one failure; True when the link is lost (now or already). Sets `error` on the first loss."""
        self.failures += 1
        if not (fatal or self.failures >= self.max_consecutive):
            return False
        if self.error is None:
            self.error = f"{reason} ({self.failures} failed {self.what} in a row)" if self.failures > 1 else reason
        return True


@dataclass(frozen=True)
class JointReading:
    positions_rad: np.ndarray  # (n,) in joint_names order
    velocities_rad_s: np.ndarray  # (n,)
    stamp_ns: int  # when the positions were measured (capture time)


class DriverBackend(abc.ABC):
    joint_names: tuple[str, ...]

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def enable(self) -> None: ...

    @abc.abstractmethod
    def disable(self) -> None: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @abc.abstractmethod
    def read(self) -> JointReading:
        """The latest measured joint state. Raises DriverError when not connected or the link failed."""

    @abc.abstractmethod
    def command(self, positions_rad: np.ndarray) -> None:
        """Set joint position targets (joint_names order). Raises DriverError when not enabled."""

    def stop(self) -> None:
        """E-stop: stop moving now and hold still; commands are refused until enable() again."""
        self.disable()

    def update(self, now_ns: int) -> None:
        """Called by the node at its state rate; backends that must be driven (the simulator) advance here."""

    @property
    def period_s(self) -> float:
        """How often the node should call update() and publish the joint state."""
        return 0.05
