"""The semantic module's loop: matched camera frames + instruction (+ prompt state) -> semantic condition.

The counterpart of `ActionLoop`, and like it driven by three callers on three clocks: the semantic
node (wall time live, the bag's time under use_sim_time), the bag re-run (bag time) and the
closed-loop eval (sim time). `now_ns` is always the clock the frame stamps are on; it decides frame
ages and the rate cap. `step(now_ns)` encodes the newest unused frame set when there is one, or
returns None and keeps the reason (`stats().reason`). `request_refresh` (the action side's confidence
trigger, control/refresh_trigger.py) lets the next frame set through the rate cap at once.

Threads (the node): image, state and instruction callbacks on the executor thread, `step` on the
encode worker, `stats` on the diagnostics timer. Everything they share sits behind one lock, which is
never held while the policy encodes. Invariants: `seq` counts finished encodes and never goes back; a
frame set is encoded at most once; encode figures only ever describe finished encodes.
One thread calls `step` (or `take` + `encode`) at a time.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.control.frame_sync import FrameSet, FrameSyncConfig, FrameSynchronizer
from asyncvla_ros.control.semantic_store import SemanticItem
from asyncvla_ros.imaging import resize_rgb
from asyncvla_ros.parameters import check_fields, param

STATS_WINDOW_S = 5.0  # refresh rate and encode time are over this much of the recent past
SILENT_CAMERAS_S = 1.0  # "no camera frame for X s" once frames have stopped this long


@dataclass
class SemanticLoopConfig:
    camera_names: tuple[str, ...] = param(("front", "wrist"), "cameras in the policy's order; topics <name>/image_raw")
    max_skew_s: float = param(0.05, "largest capture-time spread of one frame set, s", low=0.001, high=5.0)
    max_frame_age_s: float = param(0.5, "frames older than this are dropped, never encoded, s", low=0.01, high=30.0)
    max_rate_hz: float = param(0.0, "cap on encodes per second; 0 = back to back, Hz", low=0.0, high=1000.0)

    def __post_init__(self) -> None:
        self.camera_names = tuple(self.camera_names)
        if not self.camera_names or not all(isinstance(c, str) and c for c in self.camera_names):
            raise ValueError(f"SemanticLoopConfig.camera_names must be non-empty names, got {self.camera_names!r}")
        check_fields(self)

    @property
    def min_interval_ns(self) -> int:
        """Least time between the starts of two encodes, ns (rounded, so 20/3 Hz is exactly 150 ms)."""
        return round(1e9 / self.max_rate_hz) if self.max_rate_hz > 0 else 0


@dataclass(frozen=True)
class EncodeRequest:
    """What one encode reads: a frame set, the instruction and the prompt state."""

    frames: FrameSet
    instruction: str
    state: np.ndarray | None = None  # prompt state (policy order), for policies that read it
    state_stamp_ns: int = 0
    trigger: str = ""  # why this encode came before the rate cap allowed it ("" = it did not)


@dataclass
class SemanticStats:
    seq: int  # encodes finished
    refresh_hz: float  # encodes per second over the last STATS_WINDOW_S (wall time)
    encode_ms_p50: float  # nan without a recent encode
    frames_received: int
    frames_dropped_stale: int
    encoding: bool  # an encode finished within the window
    reason: str  # why nothing was encoded lately ("" while encoding)
    triggered: int = 0  # encodes started by request_refresh


class SemanticLoop:
    """Args:
        policy: has `encode(images, instruction, state=, stamp_ns=)` and `config.backbone` (camera
            names, image size, state_in_prompt).
        config: frame matching and rate cap.
        wall_clock: seconds of a monotonic clock, for the statistics (tests give a fake one).
        joint_space: a `JointSpace` (control/joint_space.py) when the policy's joints differ from the
            robot's in order or units: the prompt state is converted before encoding.
    """

    def __init__(self, policy, config: SemanticLoopConfig, wall_clock: Callable[[], float] = time.monotonic,
                 joint_space=None) -> None:
        bb = policy.config.backbone
        if tuple(config.camera_names) != tuple(bb.camera_names):
            raise ValueError(f"camera_names {list(config.camera_names)} differ from the policy's cameras {list(bb.camera_names)}")
        self.policy, self.config, self.wall_clock = policy, config, wall_clock
        self.joint_space = None if joint_space is None or joint_space.identity else joint_space  # for a prompt state
        self.image_size = (bb.image_height_px, bb.image_width_px)
        self.uses_state = bool(bb.state_in_prompt)
        self._lock = threading.Lock()
        self._sync = FrameSynchronizer(FrameSyncConfig(camera_names=config.camera_names, max_skew_s=config.max_skew_s,
                                                       max_age_s=config.max_frame_age_s))
        self._instruction = ""
        self._state: tuple[np.ndarray, int] | None = None
        self._seq = 0
        self._last_start_ns: int | None = None  # step clock of the last encode's start (the rate cap)
        self._last_frame_wall: float | None = None
        self._skip_reason = "no camera frame received yet"
        self._encodes: deque[tuple[float, float]] = deque(maxlen=1000)  # (wall s, encode ms) of finished encodes
        self._requested = ""  # a refresh asked for and not yet started: its reason
        self._triggered = 0

    # -- inputs (any thread) ---------------------------------------------------------------------

    def add_frame(self, camera: str, stamp_ns: int, rgb: np.ndarray) -> None:
        """A camera frame, stamped at capture. Raises ValueError for a camera the policy has not."""
        with self._lock:
            self._sync.add(camera, int(stamp_ns), rgb)
            self._last_frame_wall = self.wall_clock()

    def set_instruction(self, text: str) -> bool:
        """The task instruction for the next encodes; True when it changed.

        Raises:
            ValueError: an empty instruction, one with control characters or with U+FFFD (what rclpy
                decodes invalid UTF-8 on the wire to), or one the policy's prompt cannot hold (the last
                one stays).
        """
        text = text.strip()
        if not text:
            raise ValueError("empty instruction ignored")
        bad = sorted({c for c in text if c == "\ufffd" or (unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r")})
        if bad:
            raise ValueError(f"instruction with control characters or invalid UTF-8 (U+FFFD) ignored: {[hex(ord(c)) for c in bad]}")
        check = getattr(self.policy, "check_instruction", None)
        if check is not None:
            check(text)  # InputError is a ValueError
        with self._lock:
            changed, self._instruction = text != self._instruction, text
        return changed

    @property
    def instruction(self) -> str:
        with self._lock:
            return self._instruction

    def set_state(self, positions: np.ndarray, stamp_ns: int) -> None:
        """The latest joint state (policy order), read by policies that put it in their prompt."""
        with self._lock:
            self._state = (np.asarray(positions, dtype=np.float64), int(stamp_ns))

    @property
    def pending_refresh(self) -> str:
        """The reason of a refresh asked for and not yet started ("" = none)."""
        with self._lock:
            return self._requested

    def request_refresh(self, reason: str) -> None:
        """Encode the next matched frame set at once, whatever the rate cap says (once)."""
        with self._lock:
            self._requested = reason or "refresh requested"

    # -- encoding (one worker thread) --------------------------------------------------------------

    def seconds_until_allowed(self, now_ns: int) -> float:
        """How long the rate cap holds off the next encode, s on the step clock (0 = now, or a refresh is requested)."""
        with self._lock:
            return 0.0 if self._requested else max(0.0, self._wait_ns(now_ns) * 1e-9)

    def _wait_ns(self, now_ns: int) -> int:
        if self._last_start_ns is None or now_ns < self._last_start_ns:  # a clock that jumped back (a looped bag)
            return 0
        return self._last_start_ns + self.config.min_interval_ns - now_ns

    def take(self, now_ns: int) -> EncodeRequest | None:
        """The next encode's inputs, or None (and the reason kept) when there is nothing to encode."""
        with self._lock:
            if not self._instruction:
                self._skip_reason = "no instruction"
                return None
            if self._wait_ns(now_ns) > 0 and not self._requested:
                return None  # the rate cap: not a reason to report, the loop is encoding
            if self.uses_state and self._state is None:
                self._skip_reason = "waiting for a joint state: this policy reads it in its prompt"
                return None
            frames = self._sync.take(int(now_ns))
            if frames is None:
                self._skip_reason = self._sync.stats.last_reason
                return None
            self._last_start_ns = int(now_ns)
            state, state_stamp = self._state if self.uses_state else (None, 0)
            trigger, self._requested = self._requested, ""
            self._triggered += bool(trigger)
            return EncodeRequest(frames, self._instruction, state, state_stamp, trigger)

    def encode(self, request: EncodeRequest, seq: int | None = None) -> SemanticItem:
        """Encode `request` (outside the lock) and count it.

        Args:
            seq: the item's sequence number; default the next of this loop's (a re-run gives the
                recorded one).
        """
        images = [resize_rgb(f, self.image_size) for f in request.frames.frames]
        stamp = request.frames.stamp_ns
        t0 = time.perf_counter()
        state = request.state
        if state is not None and self.joint_space is not None:
            state = self.joint_space.to_policy(state)
        cond = self.policy.encode(images, request.instruction, state=state, stamp_ns=stamp)
        encode_ms = (time.perf_counter() - t0) * 1e3
        with self._lock:
            self._seq += 1
            self._encodes.append((self.wall_clock(), encode_ms))
            number = self._seq if seq is None else int(seq)
        return SemanticItem(cond, number, stamp, request.instruction, encode_ms,
                            frame_stamps_ns=tuple(request.frames.stamps_ns), state_stamp_ns=request.state_stamp_ns,
                            trigger=request.trigger)

    def step(self, now_ns: int) -> SemanticItem | None:
        """Encode the newest unused frame set if one is due; None otherwise (see `stats().reason`)."""
        request = self.take(now_ns)
        return self.encode(request) if request is not None else None

    # -- figures (any thread) -----------------------------------------------------------------------

    def stats(self) -> SemanticStats:
        with self._lock:
            wall = self.wall_clock()
            recent = [ms for t, ms in self._encodes if wall - t < STATS_WINDOW_S]
            sync = self._sync.stats
            if not self._instruction:
                reason = "no instruction"
            elif self._last_frame_wall is None:
                reason = "no camera frame received yet"
            elif wall - self._last_frame_wall > SILENT_CAMERAS_S:
                reason = f"no camera frame for {wall - self._last_frame_wall:.1f} s"
            else:
                reason = self._skip_reason
            return SemanticStats(
                seq=self._seq, refresh_hz=len(recent) / STATS_WINDOW_S,
                encode_ms_p50=float(np.median(recent)) if recent else float("nan"),
                frames_received=sync.received, frames_dropped_stale=sync.dropped_stale,
                encoding=bool(recent), reason="" if recent else reason, triggered=self._triggered)
