"""Deterministic offline re-run of the semantic and action code on a recorded bag.

The bag's camera frames, joint states and instruction drive the semantic node's `SemanticLoop`
(bags/semantic_replay.py) and the action node's `ActionLoop` (act(), temporal ensembling, history) in
bag time, not real time, with seeded noise: the same bag, model and seed give the same chunks, bit for bit.

Two schedules:
- The bag holds the action node's chunks (with `tick` and `seed`): the re-run ticks exactly where the
  node ticked, from the bag's first chunk on, in the node's chunk mode and plan delay. A tick without
  a recorded chunk was a hold (which restarts the chunks and history, so the re-run holds there too),
  a chunk the recorder missed (the chunk ids tell which), or, with a plan delay, a tick that ran the
  landed chunks while the plan was in flight (the node's hold count tells which). Each chunk is
  planned from the joint state it was planned from, the semantic refresh it used (re-encoded from the
  same frames and prompt state) and the node's seed.
  A chunk also rests on the chunks before it (ensembling, and the executed-action history): a chunk
  whose inputs are not all in the bag (its refresh's frames were captured before the recording
  began, the history reaches back before the bag's first chunk or over one the recorder missed, a
  frame or joint state the recorder lost) is flagged, and the node's recorded chunk, not the re-run's,
  goes on into ensembling and history, so that the chunks after it are reproduced again. Chunks whose
  refresh predates the bag are not planned at all ("before the recording"). What the safety filter
  let through for a command replaces it in the history in the entries the node's own history held it
  (ActionChunk.history_answered), where the re-run sent that same command; an answer the bag lacks
  flags the chunk.
- Otherwise it ticks at `control_rate_hz` over the recorded joint states.

Options change one mechanism at a time: `semantic_rate_hz` re-encodes the bag's newest frames at
that rate instead of using the recorded refreshes (stale semantics at low rates), `afm=False` plans
with SFM alone.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from asyncvla_ros.bags.recording import Recording, stamp_ns
from asyncvla_ros.bags.semantic_replay import EXACT, SKIPPED, EncodeRecord, SemanticReplay
from asyncvla_ros.bags.types import BagError
from asyncvla_ros.control.action_loop import ActionLoop, ActionLoopConfig
from asyncvla_ros.control.joint_space import JointSpace
from asyncvla_ros.control.safety import is_stale
from asyncvla_ros.control.semantic_loop import SemanticLoopConfig
from asyncvla_ros.policy.config import ACT_MODES

logger = logging.getLogger(__name__)

# TickRecord.skipped: nothing recorded to plan from (no state yet, or none the loop would accept at the tick)
STATE_NOT_IN_BAG = "no usable joint state in the bag"

# TickRecord.missing: what a chunk rested on that the bag does not hold (so the re-run need not match it).
MISSING_HISTORY = "chunks or history from before the bag, or over a chunk the recorder missed"
MISSING_SEMANTICS = "the refresh's frames (re-encoded from the nearest set the bag holds)"
MISSING_STATE = "the joint state it was planned from (planned from the one recorded before)"
MISSING_ANSWERS = "a safety-filter answer its history held (or the re-run's command there differed)"
MISSING_HOLDS = "the node's holds (its hold count differs from the re-run's: a tick it neither planned nor held)"
MISSED_BY_RECORDER = "the node planned a chunk the bag lacks"  # TickRecord.reason of such a tick
MISSING_NAMES = {MISSING_HISTORY: "history", MISSING_SEMANTICS: "refresh_frames", MISSING_STATE: "joint_state",
                 MISSING_ANSWERS: "filter_answer", MISSING_HOLDS: "holds"}  # short names, for the report's figures


@dataclass
class RerunConfig:
    seed: int | None = None  # noise seed base (tick k uses seed + k); None = the recorded node's, else 0
    afm: bool = True  # False: SFM only (the rater still runs and is reported; nothing is regenerated)
    mode: str = ""  # asyncvla | sfm_only | random_mask; "" = the recorded chunks' mode, else asyncvla
    semantic_rate_hz: float = 0.0  # 0 = the recorded semantic refreshes; > 0 = re-encode frames at this rate, Hz
    semantic_latency_s: float = 0.0  # simulated refreshes become usable this long after they start, s
    control_rate_hz: float = 20.0  # tick rate for bags without recorded chunks, Hz
    max_semantic_age_s: float = 1.0  # as the action node: hold on older semantics, s
    max_state_age_s: float = 0.25  # as the action node: no command on an older joint state, s
    ensemble_decay: float = 0.1  # ACT temporal ensembling m in exp(-m i)
    max_skew_s: float = 0.06  # frame-set capture spread, as the semantic node's max_skew_s, s
    max_frame_age_s: float = 0.5  # simulated refreshes drop older frames, as the semantic node's max_frame_age_s, s
    instruction: str = ""  # "" = the recorded one
    joint_names: tuple[str, ...] = ()  # () = the recorded chunks' joint names, else the joint states' names

    def __post_init__(self) -> None:
        if self.mode and self.mode not in ACT_MODES:
            raise ValueError(f"RerunConfig.mode must be one of {ACT_MODES}, got {self.mode!r}")
        for name in ("semantic_rate_hz", "semantic_latency_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"RerunConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("control_rate_hz", "max_semantic_age_s", "max_state_age_s", "max_skew_s", "max_frame_age_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RerunConfig.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class TickRecord:
    """One control tick of the re-run, beside what the action node did at that tick (if recorded)."""

    tick: int
    now_ns: int  # bag time the tick ran at (for recorded chunks the node's clock then, ActionChunk.command_stamp)
    state_stamp_ns: int  # 0 = no state
    holding: bool
    reason: str
    command: np.ndarray | None  # (action_dim,) ensembled target
    chunk: object | None  # policy ChunkResult
    chunk_id: int
    semantic_seq: int
    semantic_stamp_ns: int
    recorded: object | None = None  # decoded ActionChunk of the action node at this tick
    recorded_log_ns: int = 0
    missing: str = ""  # what the node's chunk rested on that the bag lacks (MISSING_*), "" when nothing
    skipped: str = ""  # why the recorded chunk was not re-planned (semantic_replay.SKIPPED), "" when it was
    # What the safety filter let through for this command (recorded) went into the history in its place;
    # "clamped" when that differed from the command.
    filtered: str = ""  # "" | "passed" | "clamped"
    history_answered: tuple[bool, ...] = ()  # the re-run's history entries that held the filter's answer
    hold_ticks: int = 0  # ticks the re-run had held by this one (ActionChunk.hold_ticks)

    @property
    def inputs_complete(self) -> bool:
        return not self.missing

    @property
    def semantic_age_s(self) -> float:
        """How old the semantics were at the state the chunk was planned from (ActionChunk.semantic_age_s), s."""
        return (self.state_stamp_ns - self.semantic_stamp_ns) * 1e-9 if self.chunk is not None else float("nan")


@dataclass
class RerunResult:
    bag: str
    model_id: str
    recorded_model_id: str
    joint_names: tuple[str, ...]
    mode: str
    seed: int
    chunk_mode: str  # ActionLoopConfig.chunk_mode, as the recorded node's
    plan_delay_ticks: int
    schedule: str  # "recorded ticks" | "<rate> Hz ticks"
    semantics: str  # "recorded refreshes" | "<rate> Hz re-encoded"
    start_ns: int
    ticks: list[TickRecord] = field(default_factory=list)
    encodes: list[EncodeRecord] = field(default_factory=list)
    wall_s: float = 0.0
    config: RerunConfig | None = None

    @property
    def chunk_ticks(self) -> list[TickRecord]:
        return [t for t in self.ticks if t.chunk is not None]


class Rerun:
    """Drives one policy over one recording; `run()` returns the ticks. Not thread-safe."""

    def __init__(self, policy, model_id: str, rec: Recording, config: RerunConfig) -> None:
        self.policy, self.model_id, self.rec, self.config = policy, model_id, rec, config
        rec.index()
        bb, e = policy.config.backbone, policy.config.expert
        recorded = [c for _, c in rec.chunks]
        self.joint_names = tuple(config.joint_names) or (tuple(recorded[0].joint_names) if recorded else rec.states[0].names)
        if len(self.joint_names) != e.action_dim:
            raise BagError(f"joints {list(self.joint_names)} do not match the policy's {e.action_dim} action dimensions: "
                           "pass joint_names")
        self.with_ticks = bool(recorded) and all(int(c.tick) > 0 for c in recorded)
        if recorded and not self.with_ticks:
            logger.warning("the bag's chunks carry no tick numbers (recorded before ActionChunk.tick existed): "
                           "ticking at %.1f Hz instead of the recorded schedule", config.control_rate_hz)
        first = min(recorded, key=lambda c: c.tick) if self.with_ticks else None
        self.seed = config.seed if config.seed is not None else (int(first.seed) - int(first.tick) if first else 0)
        mode = config.mode or (recorded[0].mode if recorded and recorded[0].mode in ACT_MODES else "asyncvla")
        self.mode = "sfm_only" if not config.afm else mode
        # Bags from before these fields: ensembling, no delay.
        schedules = {(getattr(c, "chunk_mode", "") or "ensemble", int(getattr(c, "plan_delay_ticks", 0))) for c in recorded}
        if len(schedules) > 1:
            raise BagError(f"the bag's chunks were planned in several chunk modes / plan delays {sorted(schedules)}: "
                           "re-run one node run at a time")
        chunk_mode, self.plan_delay = schedules.pop() if schedules else ("ensemble", 0)
        # The bag holds the graph's radians; a policy in other units or joint order plans in its own.
        joint_space = JointSpace(policy.config.joints, self.joint_names)
        self.loop = ActionLoop(policy, ActionLoopConfig(
            control_rate_hz=config.control_rate_hz, max_semantic_age_s=config.max_semantic_age_s,
            max_state_age_s=config.max_state_age_s, ensemble_decay=config.ensemble_decay, mode=self.mode, seed=self.seed,
            chunk_mode=chunk_mode, plan_delay_ticks=self.plan_delay), joint_space)
        self.command_stamps = sorted(rec.commands)  # the node's ticks that sent a command
        self.simulated = config.semantic_rate_hz > 0 or not (self.with_ticks or rec.semantics)
        self.semantic_rate_hz = config.semantic_rate_hz or (5.0 if self.simulated else 0.0)  # 5 Hz: the paper's upper rate
        if self.simulated and not config.semantic_rate_hz:
            logger.warning("the bag records no semantic refreshes: re-encoding its frames at %.1f Hz", self.semantic_rate_hz)
        self.semantic = SemanticReplay(policy, rec, SemanticLoopConfig(
            camera_names=tuple(bb.camera_names), max_skew_s=config.max_skew_s, max_frame_age_s=config.max_frame_age_s,
            max_rate_hz=self.semantic_rate_hz if self.simulated else 0.0), config.instruction, self.joint_names, joint_space)
        # A chunk rests on the chunks of the ticks before it: ensembling blends the last L, and the
        # history holds the last H commands, each a blend of L chunks; a plan lands d ticks after its tick.
        self.reach = e.history_len + e.chunk_len - 1 + self.plan_delay
        # The node's chunks can stand in for the re-run's only when they have its shape (not so for a
        # re-run with another model's chunk length): the re-run then plans every tick it can itself.
        self._sent: dict[int, TickRecord] = {}  # the re-run's ticks by the stamp of the node's command
        self.can_follow = all((int(c.horizon), int(c.action_dim)) == (e.chunk_len, e.action_dim) for c in recorded)

    # -- ticks -------------------------------------------------------------------------------------

    def recorded_schedule(self) -> list[tuple[int, str, object | None]]:
        """(tick, kind, recorded (log_ns, chunk) or None) from the bag's first chunk to its last; kind is
        "chunk", "hold" (a tick the node held), "missed" (the node planned a chunk the bag lacks) or
        "flight" (with a plan delay: a tick that ran the landed chunks while the plan was in flight)."""
        by_tick = {int(c.tick): (log_ns, c) for log_ns, c in self.rec.chunks}
        ticks = sorted(by_tick)
        out = [(ticks[0], "chunk", by_tick[ticks[0]])]
        for a, b in zip(ticks, ticks[1:]):
            gap = b - a - 1
            # The node counts its chunks: of the ticks between a and b, this many planned a chunk.
            missed = min(max(int(by_tick[b][1].chunk_id) - int(by_tick[a][1].chunk_id) - 1, 0), gap)
            if self.plan_delay and not missed:
                # One plan in flight at a time, and a hold drops it: the ticks after a ran it until the
                # node's holds (its hold count tells how many), which end where the next plan, b, began.
                holds = min(max(int(by_tick[b][1].hold_ticks) - int(by_tick[a][1].hold_ticks), 0), gap)
                out += [(k, "flight", by_tick[a]) for k in range(a + 1, b - holds)]
                out += [(k, "hold", None) for k in range(b - holds, b)]
            else:
                out += [(k, "hold", None) for k in range(a + 1, b - missed)]
                out += [(k, "missed", None) for k in range(b - missed, b)]
            out.append((b, "chunk", by_tick[b]))
        return out

    def run(self) -> RerunResult:
        t_wall = time.perf_counter()
        out = self._run_recorded() if self.with_ticks else self._run_rate()
        recorded_ids = {r.model_id for r in self.rec.semantics.values() if r.model_id}
        return RerunResult(
            bag=self.rec.path, model_id=self.model_id, recorded_model_id=", ".join(sorted(recorded_ids)) or "unknown",
            joint_names=self.joint_names, mode=self.mode, seed=self.seed, chunk_mode=self.loop.config.chunk_mode,
            plan_delay_ticks=self.plan_delay,
            schedule="recorded ticks" if self.with_ticks else f"{self.config.control_rate_hz:g} Hz ticks",
            semantics=f"re-encoded at {self.semantic_rate_hz:g} Hz" if self.simulated else "recorded refreshes",
            start_ns=self.rec.start_ns, ticks=out, encodes=self.semantic.encodes, wall_s=time.perf_counter() - t_wall,
            config=self.config)

    def _run_recorded(self) -> list[TickRecord]:
        schedule = self.recorded_schedule()
        first_tick, _, (_, first) = schedule[0]
        self.loop.skip_to(first_tick - 1, int(first.chunk_id) - 1, int(getattr(first, "hold_ticks", 0)))
        # Ticks up to this one rest on chunks the bag lacks. The node's first chunk (id 1) came after holds only.
        unknown_until = first_tick - 1 + (self.reach if int(first.chunk_id) > 1 else 0)
        latency = int(self.config.semantic_latency_s * 1e9)
        out = []
        for k, kind, recorded in schedule:
            if kind == "hold":
                result = self.loop.tick(0, None, None, 0)  # restarts ensembling and history, as the node's hold did
                out.append(self._record(k, result, 0, 0, None, 0))
                unknown_until = min(unknown_until, k)
                continue
            if kind == "flight":
                out.append(self._flight(k, recorded[1]))
                continue
            if kind == "missed":
                self.loop.follow(None)
                unknown_until = max(unknown_until, k + self.reach)
                out.append(TickRecord(k, 0, 0, False, MISSED_BY_RECORDER, None, None, self.loop.chunk_id,
                                      0, 0, missing=MISSING_HISTORY))
                continue
            log_ns, chunk = recorded
            state_stamp, now = stamp_ns(chunk.header.stamp), tick_stamp(chunk)
            answers_in_bag = self._feed_answers(chunk)
            executed = (np.asarray(chunk.actions, np.float32).reshape(int(chunk.horizon), int(chunk.action_dim))
                        if self.can_follow else None)
            if self.simulated:
                semantics, exact = self.semantic.simulated(now, latency), True
            else:
                refresh = self.semantic.recorded(int(chunk.semantic_seq), stamp_ns(chunk.semantic_stamp))
                if refresh.status in SKIPPED:
                    out.append(self._skip(k, chunk, log_ns, executed, refresh.status))
                    continue
                semantics, exact = refresh.item, refresh.status == EXACT
            sample = self.rec.state_at(state_stamp)
            if sample is None:  # the joint state the node planned from is missing: the newest stamped before it
                # (by stamp, not by log time: a chunk logged late, under load, would pick a state from
                # after the tick, which the loop refuses as stamped in the future, and hold)
                sample = self.rec.latest_state_stamped(state_stamp)
                if sample is not None and is_stale((now - sample.stamp_ns) * 1e-9, self.loop.config.max_state_age_s):
                    sample = None  # one the loop would refuse and hold on, where the node planned: not usable
            if sample is None:  # no usable joint state (a recorder that matched /joint_states late, or lost them)
                out.append(self._skip(k, chunk, log_ns, executed, STATE_NOT_IN_BAG))
                continue
            # The first input the bag lacks; the node's hold count says whether the schedule restarted
            # chunks and history where the node did.
            holds_match = int(getattr(chunk, "hold_ticks", self.loop.hold_ticks)) == self.loop.hold_ticks
            missing = next((why for why, lacking in ((MISSING_HISTORY, k <= unknown_until), (MISSING_SEMANTICS, not exact),
                                                      (MISSING_STATE, sample.stamp_ns != state_stamp),
                                                      (MISSING_ANSWERS, not answers_in_bag), (MISSING_HOLDS, not holds_match))
                            if lacking), "")
            state = self.rec.state_positions(sample, self.joint_names)
            result = self.loop.tick(now, semantics, state, sample.stamp_ns, executed=executed if missing else None)
            record = self._record(k, result, now, sample.stamp_ns, chunk, log_ns)
            record.missing = missing
            self._sent[now] = record
            out.append(record)
        return out

    def _skip(self, k: int, chunk, log_ns: int, executed: np.ndarray | None, why: str) -> TickRecord:
        """A recorded chunk the re-run cannot plan (nothing in the bag to plan it from): the node's chunk
        goes on into ensembling and history in its place (the chunk's filter answers are already fed)."""
        now = tick_stamp(chunk)
        command = self.loop.follow(executed, now)
        record = TickRecord(k, now, stamp_ns(chunk.header.stamp), False, "", command, None, self.loop.chunk_id,
                            int(chunk.semantic_seq), stamp_ns(chunk.semantic_stamp), chunk, log_ns, missing=why,
                            skipped=why)
        self._sent[now] = record
        return record

    def _flight(self, k: int, planned) -> TickRecord:
        """A tick that ran the landed chunks while the plan of `planned` was in flight: no plan, no input
        checks (the node acted), at the stamp of the node's command of that tick (the bag's commands
        after the plan's, in order; a command the bag lacks leaves the next answers unmatched, which
        flags the chunks that rest on them)."""
        after = tick_stamp(planned)
        i = bisect.bisect_right(self.command_stamps, after) + (k - int(planned.tick) - 1)
        now = self.command_stamps[i] if i < len(self.command_stamps) else 0
        record = TickRecord(k, now, 0, False, "", self.loop.advance(now), None, self.loop.chunk_id, 0, 0)
        self._sent[now] = record
        return record

    def _feed_answers(self, chunk) -> bool:
        """Before re-planning `chunk`: the safety filter's answers the node's history held when it planned
        it (ActionChunk.history_answered, per entry) go into the same entries of the re-run's history,
        from the bag's /safe_joint_command, where the re-run sent that very command. False when one of
        them cannot be (the bag lacks it, or the re-run's command differs): the chunk's inputs are then
        not all in the bag. Bags from before the field: nothing is fed."""
        flags = list(getattr(chunk, "history_answered", ()))
        stamps, done = self.loop.history.stamps(), self.loop.history.answered()
        if not flags:
            return True
        if len(flags) != len(stamps):
            return False
        complete = True
        for stamp, wanted, already in zip(stamps, flags, done):
            if not wanted or already:
                continue
            record, sent, safe = self._sent.get(stamp), self.rec.commands.get(stamp), self.rec.safe_commands.get(stamp)
            try:
                same = (record is not None and record.command is not None and sent is not None and safe is not None
                        and np.array_equal(self.rec.state_positions(sent, self.joint_names), record.command))
                let_through = self.rec.state_positions(safe, self.joint_names) if same else None
            except BagError:
                same = False  # recorded under other joint names: nothing to compare with
            if not same:
                complete = False
                continue
            self.loop.executed(stamp, let_through)
            record.filtered = "passed" if np.array_equal(let_through, record.command) else "clamped"
        return complete

    def _run_rate(self) -> list[TickRecord]:
        """Ticks at control_rate_hz over the recorded joint states, on simulated refreshes."""
        period = int(1e9 / self.config.control_rate_hz)
        latency = int(self.config.semantic_latency_s * 1e9)
        t, k, out = self.rec.states[0].log_ns, 0, []
        while t <= self.rec.states[-1].log_ns:
            k += 1
            sample = self.rec.latest_state(t)
            state = self.rec.state_positions(sample, self.joint_names)
            result = self.loop.tick(t, self.semantic.simulated(t, latency), state, sample.stamp_ns)
            out.append(self._record(k, result, t, sample.stamp_ns, None, 0))
            t += period
        return out

    def _record(self, k, result, now, state_stamp, chunk, log_ns) -> TickRecord:
        return TickRecord(k, now, state_stamp, result.holding, result.reason, result.command, result.chunk,
                          result.chunk_id, result.semantic_seq, result.semantic_stamp_ns, chunk, log_ns,
                          history_answered=result.history_answered, hold_ticks=self.loop.hold_ticks)


def tick_stamp(chunk) -> int:
    """The node's clock at the tick that planned `chunk` (its command's stamp); the joint state's stamp
    in bags from before ActionChunk.command_stamp."""
    stamp = stamp_ns(chunk.command_stamp) if hasattr(chunk, "command_stamp") else 0
    return stamp or stamp_ns(chunk.header.stamp)


def run_rerun(policy, model_id: str, rec: Recording, config: RerunConfig) -> RerunResult:
    """Re-run `policy` over `rec` (see the module docstring)."""
    return Rerun(policy, model_id, rec, config).run()
