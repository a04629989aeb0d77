"""A backend that streams joint velocities at a fixed rate from its own thread, following the latest
accepted position targets (the Kinova Gen2 arms: streaming position goals makes them stop at every
point, while a velocity stream at the controller's 10 ms loop moves them smoothly).

Subclasses provide the arm link: `_open`, `_close`, `_read_arm`, `_send_velocity`, `_halt`.

    connect    open the link, start the loop (reads only: zero velocity is never even sent)
    enable     target := measured position, start streaming
    disable    stop streaming: zero velocity, then the arm's trajectory FIFO is erased (`_halt`)
    disconnect stop the loop, halt, close the link

Every command sent is recorded (time, rad/s) so tests and diagnostics can check the speed limits.
A link that fails `max_consecutive_failures` times in a row counts as lost: the loop stops, one
best-effort halt is tried, and read()/command() raise DriverError.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque

import numpy as np

from asyncvla_ros.drivers.base import DriverBackend, DriverError, JointReading, LinkHealth
from asyncvla_ros.drivers.hardware import LoopStats, checked_targets
from asyncvla_ros.drivers.kinova.config import KinovaTrackingConfig
from asyncvla_ros.drivers.kinova.tracking import VelocityTracker

logger = logging.getLogger(__name__)


class VelocityStreamingBackend(DriverBackend):
    name = "velocity stream"

    def __init__(self, config: KinovaTrackingConfig, history_s: float = 120.0) -> None:
        self.config = config
        self.joint_names = config.joint_names
        self._n = len(config.joint_names)
        self._lower = np.asarray(config.position_lower)
        self._upper = np.asarray(config.position_upper)
        self._continuous = np.array([j in config.continuous_joints for j in config.joint_names])
        self.tracker = VelocityTracker(config.speed_limit_rad_s, config.accel_limit_rad_s2, config.position_gain_per_s,
                                       config.position_tolerance_rad, self._lower, self._upper, 1.0 / config.loop_rate_hz)
        self._io_lock = threading.Lock()  # one call into the arm link at a time
        self._lock = threading.Lock()  # the state below
        self._connected = False
        self._enabled = False
        self._target: np.ndarray | None = None
        self._target_time = 0.0  # monotonic s of the latest target
        self._feedforward = np.zeros(self._n)  # the targets' velocity, rad/s, valid until _feedforward_until
        self._feedforward_until = 0.0
        self._velocity = np.zeros(self._n)
        self._reading: JointReading | None = None
        self._last_ok_s = 0.0
        self._link = LinkHealth(config.max_consecutive_failures, "calls")
        self.sent: deque[tuple[float, np.ndarray]] = deque(maxlen=int(history_s * config.loop_rate_hz))
        self.stats = LoopStats(1.0 / config.loop_rate_hz)
        self.counts = {"velocity_commands": 0, "halts": 0, "link_errors": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the arm link (subclasses) -----------------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> None:
        """Connect to the arm; raise DriverError saying why not."""

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _read_arm(self) -> tuple[np.ndarray, np.ndarray | None, int] | None:
        """(positions rad, velocities rad/s or None, capture stamp ns), or None when nothing new has arrived."""

    @abc.abstractmethod
    def _send_velocity(self, velocity_rad_s: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _halt(self) -> None:
        """Zero velocity now and drop any queued motion."""

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def period_s(self) -> float:
        return 1.0 / self.config.state_rate_hz

    def connect(self) -> None:
        if self._connected:
            raise DriverError(f"{self.name} already connected: cleanup first")
        self._open()
        self._connected = True
        self._link.reset()
        self._reading = None
        self._velocity = np.zeros(self._n)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-loop", daemon=True)
        self._thread.start()

    def enable(self) -> None:
        self._require_link()
        with self._lock:
            if self._reading is None:
                raise DriverError(f"{self.name}: no joint reading from the arm yet; cannot hold a position")
            self._target = self._reading.positions_rad.copy()
            self._target_time, self._feedforward_until = time.monotonic(), 0.0
            self._velocity = np.zeros(self._n)
            self._enabled = True

    def disable(self) -> None:
        """Stop streaming, send zero velocity and erase queued trajectories (skipped on a lost link, and
        when nothing was streaming)."""
        with self._lock:
            was_enabled, self._enabled = self._enabled, False
            self._target = None
            self._velocity = np.zeros(self._n)
        if not was_enabled:
            return
        if self._connected and self._link.error is None:
            try:
                with self._io_lock:
                    self._halt()
                    self._record(np.zeros(self._n))
                self.counts["halts"] += 1
            except DriverError as err:
                self._fail(f"halt failed: {err}", fatal=True)
        else:
            logger.error("%s: link lost; could not send the stop", self.name)

    def stop(self) -> None:
        """E-stop: zero velocity and trajectories erased, streaming or not; activate again to move."""
        with self._lock:
            self._enabled = True  # so disable() halts even when nothing was streaming
        self.disable()

    def disconnect(self) -> None:
        if self._connected:
            self.disable()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._connected:
            self._connected = False
            try:
                self._close()
            except DriverError as err:
                logger.error("%s: closing the link failed: %s", self.name, err)

    # -- data ----------------------------------------------------------------------------------------

    def read(self) -> JointReading:
        self._require_link()
        with self._lock:
            reading, last_ok = self._reading, self._last_ok_s
        if reading is None:
            raise DriverError(f"{self.name}: no joint reading from the arm yet")
        age = time.monotonic() - last_ok
        if age > self.config.stale_after_s:
            raise DriverError(f"{self.name}: no joint reading for {age:.2f} s (arm link not answering?)")
        return reading

    def command(self, positions_rad: np.ndarray) -> None:
        self._require_link()
        targets = checked_targets(self.joint_names, positions_rad, self._lower, self._upper, self.name)
        now = time.monotonic()
        with self._lock:
            if not self._enabled:
                raise DriverError(f"{self.name} command ignored: driver not active (activate it to stream)")
            # Targets come at the control rate (20 Hz): their difference is the velocity to follow, used
            # until one and a half command periods have passed without a new target.
            dt = now - self._target_time
            if self._target is not None and 0.005 <= dt <= 0.25:
                self._feedforward = np.clip((targets - self._target) / dt, -self.tracker.vmax, self.tracker.vmax)
                self._feedforward_until = now + 1.5 * dt
            else:
                self._feedforward_until = 0.0
            self._target, self._target_time = targets, now

    def figures(self) -> dict:
        s = self.stats.summary()
        out = dict(self.counts)
        out.update(loop_period_mean_ms=s["mean_ms"], loop_period_p99_ms=s["p99_ms"], loop_period_max_ms=s["max_ms"],
                   loop_overruns=s["overruns"])
        if self._link.error:
            out["link_error"] = self._link.error
        return out

    def velocity_stream(self) -> tuple[np.ndarray, np.ndarray]:
        """(times s (n,), commanded velocities rad/s (n, joints)) of everything sent, oldest first."""
        with self._lock:
            items = list(self.sent)
        if not items:
            return np.zeros(0), np.zeros((0, self._n))
        return np.array([t for t, _ in items]), np.stack([v for _, v in items])

    # -- the loop ----------------------------------------------------------------------------------

    def _run(self) -> None:
        period = 1.0 / self.config.loop_rate_hz
        next_tick = time.monotonic()
        while not self._stop.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            now = time.monotonic()
            self.stats.tick(now)
            next_tick += period
            if next_tick < now - period:  # fell far behind: don't burst to catch up
                next_tick = now + period
            if not self._tick():
                break

    def _tick(self) -> bool:
        """One control period: read, then (when enabled) send the next velocity. False = link lost."""
        try:
            with self._io_lock:
                got = self._read_arm()
                if got is not None:
                    self._store(*got)
                now = time.monotonic()
                with self._lock:
                    enabled, target, reading, previous = self._enabled, self._target, self._reading, self._velocity
                    feedforward = self._feedforward if now < self._feedforward_until else None
                if enabled and target is not None and reading is not None:
                    v = self.tracker.step(reading.positions_rad, target, previous, feedforward)
                    self._send_velocity(v)
                    with self._lock:
                        self._velocity = v
                    self._record(v)
        except DriverError as err:
            self._fail(str(err))
            if self._link.error is not None:
                try:
                    with self._io_lock:
                        self._halt()  # best effort: the arm also stops by itself when the stream stops
                except DriverError:
                    pass
                return False
            return True
        with self._lock:
            self._link.succeeded()
        return True

    def _store(self, positions, velocities, stamp_ns: int) -> None:
        positions = np.array(positions, dtype=np.float64)
        with self._lock:
            prev = self._reading
            if prev is not None and self._continuous.any():
                # A continuous joint that moved more than half a turn since the last reading (a few ms ago)
                # crossed the driver's wrap point: keep its angle continuous, by whole turns.
                jump = positions[self._continuous] - prev.positions_rad[self._continuous]
                positions[self._continuous] -= 2.0 * np.pi * np.round(jump / (2.0 * np.pi))
            if velocities is None:
                dt = (stamp_ns - prev.stamp_ns) * 1e-9 if prev is not None else 0.0
                velocities = (positions - prev.positions_rad) / dt if dt > 0 else np.zeros(self._n)
            self._reading = JointReading(positions, np.asarray(velocities, dtype=np.float64), int(stamp_ns))
            self._last_ok_s = time.monotonic()

    def _record(self, v: np.ndarray) -> None:
        with self._lock:
            self.sent.append((time.monotonic(), np.array(v, dtype=np.float64)))
            self.counts["velocity_commands"] += 1

    def _fail(self, reason: str, fatal: bool = False) -> None:
        with self._lock:
            self.counts["link_errors"] += 1
            already_lost = self._link.error is not None
            if self._link.failed(reason, fatal):
                if not already_lost:
                    logger.error("%s: link lost: %s; streaming stopped", self.name, self._link.error)
                self._enabled = False
                self._target = None
            else:
                logger.warning("%s: arm call failed (%s); %d/%d", self.name, reason, self._link.failures,
                               self._link.max_consecutive)

    def _require_link(self) -> None:
        if not self._connected:
            raise DriverError(f"{self.name} not connected: configure the driver first")
        if self._link.error is not None:
            raise DriverError(f"{self.name} link lost: {self._link.error}; nothing is sent. Cleanup and configure again")
