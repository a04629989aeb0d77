"""The `so100` backend: LeRobot's SO100 follower driver (`lerobot.robots.so_follower.SO100Follower`, its
FeetechMotorsBus and its calibration file) behind the driver bridge's lifecycle.

    connect    open the serial port, ping the motors, apply LeRobot's motor configuration; torque OFF
    enable     Goal_Position := Present_Position, then torque ON (the arm holds where it is)
    disable    torque OFF
    disconnect torque OFF (LeRobot's disconnect) and close the port

All bus traffic runs on one I/O thread owned by this backend: it reads Present_Position at
`state_rate_hz` and writes the latest accepted command as soon as it arrives, through LeRobot's
`send_action` with `max_relative_target` (goal clamped to present ± max step). `read()` and
`command()` only exchange data with that thread, so a bus that stops answering never blocks the ROS
executor. After `max_consecutive_failures` failed transactions in a row the link counts as lost:
the thread stops, nothing more is written, and `read()`/`command()` raise DriverError saying so.

Joint states: positions in rad (gripper in `gripper_unit`), stamped at the middle of the bus read;
velocities (rad/s) are finite differences of successive reads (LeRobot reads positions only).

Calibration is LeRobot's: a file `<calibration_dir>/<robot_id>.json` written by `lerobot-calibrate`.
Without it, connect fails with the command to run; the node never prompts on a keyboard. When the
motors hold a different calibration than the file, the file's is written to them (what LeRobot's own
prompt does on ENTER).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from asyncvla_ros.drivers.base import DriverBackend, DriverError, JointReading, LinkHealth
from asyncvla_ros.drivers.hardware import LoopStats, checked_targets
from asyncvla_ros.drivers.so100.calibration import require_calibration_file, sync_motor_calibration
from asyncvla_ros.drivers.so100.config import JOINT_NAMES, SO100Config

logger = logging.getLogger(__name__)

# Retries of a lifecycle step's bus transaction (activate's read-and-hold and torque on, deactivate's
# torque off): one missed status packet on a busy or noisy serial link is not a lost link. The I/O
# thread's reads count their failures against max_consecutive_failures instead.
STEP_RETRIES = 2


def calibrate_command(config: SO100Config) -> str:
    """The LeRobot CLI call that writes the calibration file this backend reads."""
    cmd = f"lerobot-calibrate --robot.type=so100_follower --robot.port={config.port} --robot.id={config.robot_id}"
    if config.calibration_dir:
        cmd += f" --robot.calibration_dir={config.calibration_dir}"
    return cmd


class SO100Backend(DriverBackend):
    joint_names = JOINT_NAMES

    def __init__(self, config: SO100Config) -> None:
        self.config = config
        self._lower = np.asarray(config.position_lower)
        self._upper = np.asarray(config.position_upper)
        self._robot = None
        self._bus_lock = threading.Lock()  # one bus transaction at a time: I/O thread vs lifecycle calls
        self._lock = threading.Lock()  # the state below, shared by the I/O thread and the node's callbacks
        self._enabled = False
        self._pending: np.ndarray | None = None  # accepted target not yet written
        self._reading: JointReading | None = None
        self._last_ok_s = 0.0
        self._link = LinkHealth(config.max_consecutive_failures, "bus transactions")
        self._last_sent: np.ndarray | None = None
        self.counts = {"reads": 0, "writes": 0, "clamped_writes": 0, "bus_errors": 0}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = LoopStats(1.0 / config.state_rate_hz)

    @property
    def period_s(self) -> float:
        return 1.0 / self.config.state_rate_hz

    @property
    def robot(self):
        """LeRobot's SO100Follower (None before connect)."""
        return self._robot

    @property
    def last_sent(self) -> np.ndarray | None:
        """The last goal written to the bus after LeRobot's clamp (this package's units)."""
        with self._lock:
            return None if self._last_sent is None else self._last_sent.copy()

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        if self._robot is not None:
            raise DriverError("so100 already connected: cleanup first")
        try:
            from lerobot.robots.so_follower import SO100Follower, SO100FollowerConfig
        except ImportError as err:
            raise DriverError(f"the so100 backend needs LeRobot 0.4.4 (lerobot.robots.so_follower): {err}") from err
        cal_dir = Path(self.config.calibration_dir).expanduser() if self.config.calibration_dir else None
        robot = SO100Follower(SO100FollowerConfig(
            port=self.config.port, id=self.config.robot_id, calibration_dir=cal_dir, use_degrees=True,
            max_relative_target=self.config.relative_target_lerobot(), disable_torque_on_disconnect=True))
        require_calibration_file(robot, "so100", calibrate_command(self.config))
        for attempt in (1, 2):  # a USB serial adapter may drop the first packets after opening
            try:
                self._open_and_configure(robot)
                break
            except DriverError as err:
                if attempt == 2:
                    raise
                logger.warning("%s; retrying once", err)
                time.sleep(0.2)
        self._robot = robot
        self._link.reset()
        self._reading = None
        if not any(self._transact(self._read_state) for _ in range(self.config.max_consecutive_failures)):
            error = self._link.error or "no answer"
            self._close_port(robot)
            self._robot = None
            raise DriverError(f"so100: first joint read failed: {error}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="so100-bus", daemon=True)
        self._thread.start()
        logger.info("so100 connected on %s with calibration %s", self.config.port, robot.calibration_fpath)

    def _open_and_configure(self, robot) -> None:
        try:
            robot.bus.connect()  # opens the port, pings every motor, checks their firmware
        except Exception as err:  # LeRobot raises ConnectionError/RuntimeError/OSError here
            self._close_port(robot)
            raise DriverError(f"so100: cannot connect on {self.config.port}: {str(err).strip()}") from err
        try:
            with self._bus_lock:
                robot.bus.disable_torque()
                sync_motor_calibration(robot, "so100")
                # LeRobot's configure() re-enables torque when it ends: make that a hold, not a jump.
                self._hold_present(robot)
                robot.configure()
                robot.bus.disable_torque()
        except Exception as err:
            self._close_port(robot)
            raise DriverError(f"so100: configuring the motors on {self.config.port} failed: {err}") from err

    def enable(self) -> None:
        robot = self._require_link()
        try:
            with self._bus_lock:
                self._hold_present(robot)
                robot.bus.enable_torque(num_retry=STEP_RETRIES)
        except Exception as err:
            self._fail(f"enabling torque failed: {err}", fatal=True)
            raise DriverError(f"so100: enabling torque failed: {err}") from err
        with self._lock:
            self._pending = None
            self._enabled = True

    def disable(self) -> None:
        """Stop writing goals and switch torque off; with a lost link nothing is written at all."""
        self._halt(lambda robot: robot.bus.disable_torque(num_retry=STEP_RETRIES), "disabling torque")

    def stop(self) -> None:
        """E-stop: no more goals; Goal_Position := Present_Position with torque kept on, so the arm holds
        where it is instead of dropping under gravity (deactivate to switch torque off)."""
        self._halt(self._hold_present, "holding position")

    def _halt(self, write, what: str) -> None:
        """No more goals, then one last bus write (`write(robot)`) unless the link is gone."""
        with self._lock:
            self._enabled = False
            self._pending = None
        if self._robot is None or self._link.error is not None:
            return
        try:
            with self._bus_lock:
                write(self._robot)
        except Exception as err:
            self._fail(f"{what} failed: {err}", fatal=True)

    def disconnect(self) -> None:
        with self._lock:
            self._enabled = False
            self._pending = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        robot, self._robot = self._robot, None
        if robot is None:
            return
        if self._link.error is None:
            try:
                with self._bus_lock:
                    robot.disconnect()  # torque off (with retries), close the port
                return
            except Exception as err:
                logger.error("so100: clean disconnect failed (%s); closing the port", err)
        self._close_port(robot)

    # -- data ------------------------------------------------------------------------------------

    def read(self) -> JointReading:
        self._require_link()
        with self._lock:
            reading, last_ok = self._reading, self._last_ok_s
        age = time.monotonic() - last_ok
        if reading is None or age > self.config.stale_after_s:
            raise DriverError(f"so100: no joint reading for {age:.2f} s (bus not answering?)")
        return reading

    def command(self, positions_rad: np.ndarray) -> None:
        self._require_link()
        targets = checked_targets(JOINT_NAMES, positions_rad, self._lower, self._upper, "so100")
        with self._lock:
            if not self._enabled:
                raise DriverError("so100 command ignored: driver not active (activate it to enable torque)")
            self._pending = targets
        self._wake.set()

    def figures(self) -> dict:
        stats = self.stats.summary()
        with self._lock:
            out = dict(self.counts)
        out.update(bus_period_p99_ms=stats["p99_ms"], bus_period_max_ms=stats["max_ms"])
        if self._link.error:
            out["link_error"] = self._link.error
        return out

    # -- the I/O thread --------------------------------------------------------------------------

    def _run(self) -> None:
        period = self.period_s
        next_read = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(timeout=max(0.0, next_read - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                target, self._pending = (self._pending, None) if self._enabled else (None, None)
            if target is not None and not self._transact(lambda: self._write_goal(target)):
                if self._link.error:
                    break
            now = time.monotonic()
            if now >= next_read:
                self.stats.tick(now)
                if not self._transact(self._read_state) and self._link.error:
                    break
                next_read = max(next_read + period, time.monotonic())

    def _transact(self, step) -> bool:
        """Run one bus transaction; count failures and declare the link lost after too many in a row."""
        if self._link.error is not None:
            return False
        try:
            with self._bus_lock:
                step()
        except Exception as err:  # serial, protocol and LeRobot errors alike: the bus did not do it
            self._fail(str(err).strip() or type(err).__name__)
            return False
        with self._lock:
            self._link.succeeded()
        return True

    def _fail(self, reason: str, fatal: bool = False) -> None:
        with self._lock:
            self.counts["bus_errors"] += 1
            already_lost = self._link.error is not None
            if self._link.failed(reason, fatal):
                if not already_lost:
                    logger.error("so100: link lost on %s: %s; no further writes", self.config.port, self._link.error)
                self._enabled = False
                self._pending = None
            else:
                logger.warning("so100: bus transaction failed (%s); %d/%d", reason, self._link.failures,
                               self._link.max_consecutive)

    def _read_state(self) -> None:
        t0 = time.time_ns()
        obs = self._robot.get_observation()
        t1 = time.time_ns()
        positions = np.asarray(self.config.from_lerobot([obs[f"{m}.pos"] for m in JOINT_NAMES]), dtype=np.float64)
        stamp = (t0 + t1) // 2  # the registers were sampled during the transaction
        with self._lock:
            prev = self._reading
            if prev is not None and stamp > prev.stamp_ns:
                velocities = (positions - prev.positions_rad) / ((stamp - prev.stamp_ns) * 1e-9)
            else:
                velocities = np.zeros_like(positions)
            self._reading = JointReading(positions, velocities, stamp)
            self._last_ok_s = time.monotonic()
            self.counts["reads"] += 1

    def _write_goal(self, target: np.ndarray) -> None:
        with self._lock:  # (bus lock held) a disable/stop since the target was taken wins
            if not self._enabled:
                return
        action = {f"{m}.pos": v for m, v in zip(JOINT_NAMES, self.config.to_lerobot(target))}
        sent = self._robot.send_action(action)  # reads Present_Position, clamps, sync-writes Goal_Position
        sent_units = np.asarray(self.config.from_lerobot([sent[f"{m}.pos"] for m in JOINT_NAMES]))
        with self._lock:
            self._last_sent = sent_units
            self.counts["writes"] += 1
            if not np.allclose(sent_units, target, atol=1e-6):
                self.counts["clamped_writes"] += 1

    # -- helpers ---------------------------------------------------------------------------------

    def _require_link(self):
        if self._robot is None:
            raise DriverError("so100 not connected: configure the driver first")
        if self._link.error is not None:
            raise DriverError(f"so100 link lost: {self._link.error}; nothing is written. Check the cable and power, "
                              "then cleanup and configure the driver again")
        return self._robot

    @staticmethod
    def _hold_present(robot) -> None:
        present = robot.bus.sync_read("Present_Position", normalize=False, num_retry=STEP_RETRIES)
        robot.bus.sync_write("Goal_Position", present, normalize=False, num_retry=STEP_RETRIES)

    @staticmethod
    def _close_port(robot) -> None:
        try:
            robot.bus.port_handler.closePort()
        except Exception as err:  # already closed or the device vanished
            logger.debug("so100: closing the port: %s", err)
