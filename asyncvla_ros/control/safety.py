"""The safety filter between the policy and the driver (no rclpy, no torch).

Every command passes through `SafetyFilter.check`. A command is refused (nothing reaches the robot)
when it is malformed (NaN/inf, unknown, missing or repeated joints, mismatched lengths), too old, when
the joint state it must be checked against is missing or too old, or while the e-stop is latched. A
joint state more than `implausible_state_margin_rad` outside the limits is refused (a sensor fault):
the step window around it would otherwise pass targets far outside the limits. A
well-formed command is altered, never refused, for position limits and the maximum step per period:
each joint target is clamped into the joint's limits and then into [measured - max_step, measured +
max_step], like LeRobot's `max_relative_target`. Every refusal and alteration is counted and reported.

A stamp further in the future than the same timeout counts as stale too (clocks that disagree, or a
message from another time line): otherwise a future-stamped joint state would look fresh long after
its driver died.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from asyncvla_ros.parameters import check_fields, param

KINDS = ("joint_limit", "max_step", "stale_command", "nan", "estop", "unknown_joint", "dimension", "stale_state", "implausible_state")


@dataclass
class SafetyConfig:
    joint_names: tuple[str, ...] = param((), "joints of the robot, in the order of the limit arrays")
    position_lower_rad: tuple[float, ...] = param((), "per joint hard lower position limit, rad")
    position_upper_rad: tuple[float, ...] = param((), "per joint hard upper position limit, rad")
    max_step_rad: tuple[float, ...] = param((), "per joint largest |target - measured| one command may ask for, rad")
    command_timeout_s: float = param(0.25, "refuse commands whose stamp is older (or further ahead) than this, s", low=0.001, high=10.0)
    state_timeout_s: float = param(0.25, "refuse everything while the joint state is older (or further ahead) than this, s", low=0.001, high=10.0)
    implausible_state_margin_rad: float = param(
        0.5, "a joint state further than this outside a joint's limits is a sensor fault and is refused, rad", low=0.0, high=100.0)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n or not all(isinstance(j, str) and j for j in self.joint_names):
            raise ValueError(f"SafetyConfig.joint_names must be unique non-empty names, got {self.joint_names!r}")
        for name in ("position_lower_rad", "position_upper_rad", "max_step_rad"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != n or not all(math.isfinite(v) for v in values):
                raise ValueError(f"SafetyConfig.{name} needs {n} finite values (one per joint), got {getattr(self, name)!r}")
            setattr(self, name, values)
        for j, lo, hi in zip(self.joint_names, self.position_lower_rad, self.position_upper_rad):
            if not lo < hi:
                raise ValueError(f"SafetyConfig: joint {j!r} has lower limit {lo} >= upper limit {hi}")
        if any(s <= 0 for s in self.max_step_rad):
            raise ValueError(f"SafetyConfig.max_step_rad must be > 0 for every joint, got {self.max_step_rad!r}")
        check_fields(self)


@dataclass
class SafetyEventInfo:
    kind: str  # one of KINDS
    detail: str
    refused: bool  # True: the command was dropped; False: it was altered (clamped) or it is a notice


@dataclass
class Verdict:
    positions: np.ndarray | None  # safe targets in config joint order; None when refused
    events: list[SafetyEventInfo] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.positions is not None


def is_stale(age_s: float, limit_s: float) -> bool:
    """The staleness rule of the filter and the action loop: further than the limit from now, either way."""
    return abs(age_s) > limit_s


def describe_age(age_s: float, digits: int = 3, verb: str = "is") -> str:
    """'is 0.300 s old', or for a stamp ahead of the clock 'is stamped 2.000 s in the future (...)'."""
    if age_s >= 0:
        return f"{verb} {age_s:.{digits}f} s old"
    return f"{verb} stamped {-age_s:.{digits}f} s in the future (clocks disagree?)"


class SafetyFilter:
    """Thread-safe: state updates, commands and e-stop calls may come from different callbacks."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self._index = {name: i for i, name in enumerate(config.joint_names)}
        self._lower = np.asarray(config.position_lower_rad)
        self._upper = np.asarray(config.position_upper_rad)
        self._max_step = np.asarray(config.max_step_rad)
        self._lock = threading.Lock()
        self._state: np.ndarray | None = None
        self._state_stamp_ns = 0
        self._estop_reason: str | None = None
        self.counts: Counter[str] = Counter()  # events by kind: refusals, alterations, notices
        self.refused = 0  # commands refused

    @property
    def estop_latched(self) -> bool:
        return self._estop_reason is not None

    def _order(self, names, values, what: str) -> tuple[np.ndarray | None, SafetyEventInfo | None]:
        """Values reordered to config joint order, or the reason they can't be."""
        names = list(names)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or len(names) != len(values):
            return None, SafetyEventInfo("dimension", f"{what}: {len(names)} names but {values.size} positions", True)
        unknown = [n for n in names if n not in self._index]
        if unknown:
            return None, SafetyEventInfo("unknown_joint", f"{what}: unknown joints {unknown}; robot has {list(self._index)}", True)
        missing = [n for n in self._index if n not in names]
        if missing or len(set(names)) != len(names):
            return None, SafetyEventInfo("dimension", f"{what}: joints {missing} missing or names repeated", True)
        if not np.isfinite(values).all():
            bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
            return None, SafetyEventInfo("nan", f"{what}: non-finite values for {bad}", True)
        out = np.empty(len(self._index))
        out[[self._index[n] for n in names]] = values
        return out, None

    def update_state(self, names, positions, stamp_ns: int) -> SafetyEventInfo | None:
        """Record the measured joint positions; returns an event if the message is unusable."""
        ordered, problem = self._order(names, positions, "joint state")
        if problem is None:
            problem = self._implausible(ordered)
        with self._lock:
            if problem:
                self.counts[problem.kind] += 1
                return problem
            self._state, self._state_stamp_ns = ordered, int(stamp_ns)
        return None

    def _implausible(self, state: np.ndarray) -> SafetyEventInfo | None:
        """A measured position further outside the limits than an arm can be (a sensor or encoder fault, a
        message from another robot): the step window around it would let commands far outside the
        limits through, so it is refused and the last plausible state stays (and goes stale)."""
        margin = self.config.implausible_state_margin_rad
        bad = np.flatnonzero((state < self._lower - margin) | (state > self._upper + margin))
        if not bad.size:
            return None
        joints = {self.config.joint_names[i]: float(state[i]) for i in bad}
        return SafetyEventInfo("implausible_state", f"joint state {joints} more than {margin} rad outside the limits", True)

    def check(self, names, positions, stamp_ns: int, now_ns: int) -> Verdict:
        """Return the safe version of a command, or refuse it."""
        with self._lock:
            verdict = self._check_locked(names, positions, stamp_ns, now_ns)
            for event in verdict.events:
                self.counts[event.kind] += 1
            self.refused += not verdict.accepted
            return verdict

    def _check_locked(self, names, positions, stamp_ns: int, now_ns: int) -> Verdict:
        c = self.config
        if self._estop_reason is not None:
            return Verdict(None, [SafetyEventInfo("estop", f"e-stop latched ({self._estop_reason}); release it explicitly", True)])
        target, problem = self._order(names, positions, "command")
        if problem:
            return Verdict(None, [problem])
        age = (now_ns - int(stamp_ns)) * 1e-9
        if is_stale(age, c.command_timeout_s):
            return Verdict(None, [SafetyEventInfo("stale_command", f"command {describe_age(age)} (limit {c.command_timeout_s} s)", True)])
        state_age = (now_ns - self._state_stamp_ns) * 1e-9
        if self._state is None or is_stale(state_age, c.state_timeout_s):
            what = "no joint state yet" if self._state is None else f"joint state {describe_age(state_age)} (limit {c.state_timeout_s} s)"
            return Verdict(None, [SafetyEventInfo("stale_state", f"{what}: cannot check the step", True)])
        # Limits first, then the step window: the step bound then always holds, and an arm that is
        # somehow outside its limits is walked back towards them no faster than max_step.
        events = []
        limited = np.clip(target, self._lower, self._upper)
        for i in np.flatnonzero(limited != target):
            events.append(SafetyEventInfo(
                "joint_limit", f"{c.joint_names[i]}: {target[i]:.4f} rad clamped to [{self._lower[i]:.4f}, {self._upper[i]:.4f}]", False))
        safe = np.clip(limited, self._state - self._max_step, self._state + self._max_step)
        for i in np.flatnonzero(safe != limited):
            events.append(SafetyEventInfo(
                "max_step", f"{c.joint_names[i]}: step {limited[i] - self._state[i]:+.4f} rad clamped to ±{self._max_step[i]:.4f}", False))
        return Verdict(safe, events)

    def engage_estop(self, reason: str) -> np.ndarray | None:
        """Latch the e-stop. Returns the last measured position to command once (stop where it is)."""
        with self._lock:
            self._estop_reason = reason or "e-stop"
            self.counts["estop"] += 1
            return None if self._state is None else self._state.copy()

    def release_estop(self) -> bool:
        """Release a latched e-stop; returns whether one was latched."""
        with self._lock:
            was = self._estop_reason is not None
            self._estop_reason = None
            return was
