"""The control-rate action module: latest semantics + current state + own history -> next command.

A tick plans a chunk with `policy.act()` (SFM -> rater -> AFM) and turns the chunks planned so far into
this tick's command, by one of three chunk modes:

- `ensemble`: ACT's temporal ensembling, the weighted mean of every chunk that covers the tick;
- `latest`: the newest chunk's step for the tick;
- `continue`: as `latest`, and each new chunk is planned around the steps that will run while it is
  computed (kept as AFM context, `policy.act(context=...)`), so it starts where the arm is going.

`plan_delay_ticks` = d models a planner slower than the control period: a plan from the inputs of tick t
takes effect at tick t + d, and the next plan starts then (one plan in flight at a time). The delay is
counted in ticks, never measured on a wall clock, so a re-run of a bag meets the same ticks.

When what the plan would rest on is too old it holds instead, and says why:

- joint state missing or older than `max_state_age_s`: no command at all (the arm's position is unknown;
  the safety filter would refuse anything anyway);
- semantics missing or older than `max_semantic_age_s`, or their publisher gone: hold the last target.

A stamp further ahead of `now` than the same limit counts as stale too: clocks that disagree.

Chunks, the plan in flight and history restart after every hold, since plans made before it no longer
match the arm. The history holds what the arm was sent: each tick's command, replaced by what the safety
filter let through for it once that is known (`executed`), the same in the node, the re-run and the eval.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncvla_ros.control.ensembling import TemporalEnsembler
from asyncvla_ros.control.history import ActionHistory
from asyncvla_ros.control.safety import describe_age, is_stale
from asyncvla_ros.control.semantic_store import SemanticItem
from asyncvla_ros.parameters import check_fields, param
from asyncvla_ros.policy.config import ACT_MODES  # a plain dataclass module: no torch

CHUNK_MODES = ("ensemble", "latest", "continue")

logger = logging.getLogger(__name__)


@dataclass
class ActionLoopConfig:
    control_rate_hz: float = param(20.0, "control ticks per second, Hz", low=1.0, high=1000.0)
    max_semantic_age_s: float = param(1.0, "hold when the encoded observation is older than this, s", low=0.01, high=60.0)
    max_state_age_s: float = param(0.25, "send nothing when the joint state is older than this, s", low=0.001, high=10.0)
    ensemble_decay: float = param(0.1, "temporal ensembling: ACT's m in w_i = exp(-m i), i = 0 oldest", low=0.0, high=10.0)
    mode: str = param("asyncvla", "how chunks are planned: SFM -> rater -> AFM, SFM alone, or AFM on a random mask", choices=ACT_MODES)
    chunk_mode: str = param("ensemble", "how chunks become commands: ACT temporal ensembling, the newest chunk, or the newest "
                            "chunk planned around the steps that run while it is computed (AFM continuation)", choices=CHUNK_MODES)
    plan_delay_ticks: int = param(0, "control ticks from a plan's inputs to its first command (a planner slower than the "
                                  "period); the next plan starts when it lands; at most half the chunk", low=0, high=1000)
    seed: int = param(0, "flow-matching noise seed; tick k uses seed + k", low=0, high=2**31 - 1)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass
class TickResult:
    tick: int
    command: np.ndarray | None  # joint targets for this tick (robot units); None = send nothing
    holding: bool
    reason: str  # why it holds; "" when acting
    chunk: Any | None  # policy ChunkResult when a chunk was planned
    chunk_id: int  # id of the latest planned chunk (0 before the first)
    semantic_seq: int
    semantic_stamp_ns: int
    semantic_age_s: float  # nan when there are no semantics
    state_age_s: float  # nan when there is no state
    plan_ms: float  # wall time of this tick's planning and blending
    history_answered: tuple[bool, ...] = ()  # per history entry the plan saw: the filter's answer (ActionHistory.answered)
    switched: bool = False  # a chunk took effect at this tick (every planning tick for plan_delay_ticks 0)


class ActionLoop:
    """Stateful per-tick logic of the action node (not thread-safe: one control thread calls `tick`)."""

    def __init__(self, policy, config: ActionLoopConfig, joint_space=None) -> None:
        """Args: joint_space: a `JointSpace` when the policy's joints differ from the robot's in order or
        units (control/joint_space.py); the loop itself works in the robot's order and radians."""
        e = policy.config.expert
        if 2 * config.plan_delay_ticks > e.chunk_len:
            raise ValueError(f"plan_delay_ticks {config.plan_delay_ticks}: at most half the policy's chunk ({e.chunk_len} steps), "
                             "or a chunk runs out before the next one lands")
        if config.chunk_mode == "continue" and config.plan_delay_ticks > e.continuation_prefix:
            logger.warning("chunk_mode continue gives %d steps of context; the policy was trained to continue from at most %d "
                           "(train --prefix-fraction)", config.plan_delay_ticks, e.continuation_prefix)
        self.policy = policy
        self.config = config
        self.joint_space = None if joint_space is None or joint_space.identity else joint_space
        self.chunk_len = e.chunk_len
        self.ensembler = TemporalEnsembler(e.chunk_len, e.action_dim, config.ensemble_decay)
        self.history = ActionHistory(e.history_len, e.action_dim)
        self.tick_count = 0
        self.chunk_id = 0
        self.hold_ticks = 0  # ticks held so far (each restarts the chunks and history)
        self.last_command: np.ndarray | None = None
        self._pending: tuple[int, np.ndarray] | None = None  # (planning tick, actions): the plan in flight
        self._newest: tuple[int, np.ndarray] | None = None  # (planning tick, actions): latest / continue

    def _reset(self) -> None:
        self.ensembler.reset()
        self.history.clear()
        self._pending = self._newest = None

    def _hold(self, reason: str, command: np.ndarray | None, **info) -> TickResult:
        self._reset()
        self.hold_ticks += 1
        return TickResult(self.tick_count, command, True, reason, None, self.chunk_id, plan_ms=0.0, **info)

    def tick(self, now_ns: int, semantics: SemanticItem | None, state: np.ndarray | None, state_stamp_ns: int,
             semantics_alive: bool = True, executed: np.ndarray | None = None) -> TickResult:
        """Plan (when the planner is free) and return this tick's command, or a hold.

        Args:
            now_ns: current time.
            semantics: latest committed semantic condition, or None.
            state: current joint positions (policy order), or None.
            state_stamp_ns: capture stamp of `state`.
            semantics_alive: False when the semantic publisher is known to be gone.
            executed: (L, action_dim) the chunk another run executed at this tick (a re-run following the
                recorded node where this loop's plan may differ): it, not this loop's plan, enters the
                chunks and the history. The plan is still made and returned.
        """
        self.tick_count += 1
        c = self.config
        sem_age = (now_ns - semantics.stamp_ns) * 1e-9 if semantics else float("nan")
        state_age = (now_ns - state_stamp_ns) * 1e-9 if state is not None else float("nan")
        info = dict(
            semantic_seq=semantics.seq if semantics else 0,
            semantic_stamp_ns=semantics.stamp_ns if semantics else 0,
            semantic_age_s=sem_age,
            state_age_s=state_age,
        )
        if state is None:
            return self._hold("no joint state received yet", None, **info)
        if is_stale(state_age, c.max_state_age_s):
            return self._hold(f"joint state {describe_age(state_age, 2)} (limit {c.max_state_age_s} s)", None, **info)
        hold_at = self.last_command if self.last_command is not None else np.asarray(state, dtype=np.float64)
        if semantics is None:
            return self._hold("no semantic features received yet", hold_at, **info)
        if not semantics_alive:
            return self._hold("semantic features publisher is gone", hold_at, **info)
        if is_stale(sem_age, c.max_semantic_age_s):
            return self._hold(f"semantic features {describe_age(sem_age, 2, 'are')} (limit {c.max_semantic_age_s} s)", hold_at, **info)

        t0 = time.perf_counter()
        answered = tuple(self.history.answered())
        chunk = None
        switched = self._land_due()
        if self._pending is None:  # the planner is free: plan from this tick's inputs
            context = self._upcoming(hold_at) if c.chunk_mode == "continue" else None
            # The semantics' age as the policy reads it: from the observation to the state it plans from.
            chunk = self._act(semantics.condition, state, context, c.seed + self.tick_count,
                              (state_stamp_ns - semantics.stamp_ns) * 1e-9)
            self.chunk_id += 1
            switched = self._plan(chunk.actions if executed is None else executed) or switched
        command, waiting = self._execute(hold_at, now_ns)
        plan_ms = (time.perf_counter() - t0) * 1e3
        reason = f"first plan in flight (plan delay {c.plan_delay_ticks} ticks)" if waiting else ""
        return TickResult(self.tick_count, command, waiting, reason, chunk, self.chunk_id, plan_ms=plan_ms,
                          history_answered=answered, switched=switched, **info)

    def follow(self, actions: np.ndarray | None, now_ns: int = 0) -> np.ndarray | None:
        """Advance one tick on a chunk planned elsewhere, without planning: a re-run following the recorded
        node through ticks it cannot plan itself (their inputs predate the bag). `actions` is this tick's
        plan, as if this loop had made it. None: the chunk is unknown (the recorder missed it) and only
        the tick and chunk counters advance.

        Returns:
            This tick's command, or None when `actions` is None.
        """
        self.tick_count += 1
        self.chunk_id += 1
        if actions is None:
            return None
        self._land_due()
        self._plan(actions)
        hold_at = self.last_command if self.last_command is not None else np.asarray(actions[0], dtype=np.float64)
        return self._execute(hold_at, now_ns)[0]

    def advance(self, now_ns: int) -> np.ndarray:
        """A tick the recorded node acted on without planning (its plan was in flight), for a re-run: no
        input checks (the node made them and acted), the command from the chunks that have landed."""
        if self.last_command is None:
            raise RuntimeError("ActionLoop.advance: no tick has commanded yet")
        self.tick_count += 1
        self._land_due()
        return self._execute(self.last_command, now_ns)[0]

    def executed(self, stamp_ns: int, positions: np.ndarray) -> bool:
        """What the safety filter let through for the command of the tick at `stamp_ns` (policy order):
        it replaces that command in the history, so the policy is conditioned on what the arm was sent,
        clamps included. False when that tick's command is no longer in the history."""
        return self.history.replace(stamp_ns, positions)

    def skip_to(self, tick: int, chunk_id: int, hold_ticks: int = 0) -> None:
        """Count on from another run's tick, chunk and hold counters (a re-run of a bag recorded from a
        running node starts mid-way: seeds follow the tick); chunks and history start empty."""
        self.tick_count, self.chunk_id, self.hold_ticks = int(tick), int(chunk_id), int(hold_ticks)
        self._reset()
        self.last_command = None

    def _act(self, condition, state, context, seed: int, semantic_age_s: float):
        """policy.act in the policy's joint space; the chunk comes back in the robot's."""
        js, history = self.joint_space, self.history.array()
        if js is None:
            return self.policy.act(condition, state, history, mode=self.config.mode, seed=seed, context=context,
                                   semantic_age_s=semantic_age_s)
        chunk = self.policy.act(condition, js.to_policy(state), js.to_policy(history), mode=self.config.mode, seed=seed,
                                context=None if context is None else js.to_policy(context), semantic_age_s=semantic_age_s)
        return dataclasses.replace(chunk, actions=js.to_robot(chunk.actions), sfm_actions=js.to_robot(chunk.sfm_actions))

    # -- chunks ------------------------------------------------------------------------------------

    def _plan(self, actions: np.ndarray) -> bool:
        """This tick's plan goes in flight; it lands `plan_delay_ticks` from now (at once for 0: True)."""
        self._pending = (self.tick_count, np.asarray(actions, dtype=np.float64))
        return self._land_due()

    def _land_due(self) -> bool:
        """The plan in flight takes effect if its tick has come; returns whether it did."""
        if self._pending is None or self._pending[0] + self.config.plan_delay_ticks > self.tick_count:
            return False
        if self.config.chunk_mode == "ensemble":
            self.ensembler.add(*self._pending)
        else:
            self._newest = self._pending
        self._pending = None
        return True

    def _target(self, tick: int) -> np.ndarray | None:
        if self.config.chunk_mode == "ensemble":
            return self.ensembler.target(tick)
        if self._newest is None or not 0 <= tick - self._newest[0] < self.chunk_len:
            return None
        return self._newest[1][tick - self._newest[0]]

    def _upcoming(self, hold_at: np.ndarray) -> np.ndarray | None:
        """The commands of the next plan_delay_ticks ticks (this one first), which run while a plan made
        now is computed: the newest chunk's steps, or where it has none (the first plan) the hold.
        None when there are none (no delay)."""
        ticks = range(self.tick_count, self.tick_count + self.config.plan_delay_ticks)
        upcoming = [target if (target := self._target(k)) is not None else hold_at for k in ticks]
        return np.stack(upcoming) if upcoming else None

    def _execute(self, hold_at: np.ndarray, now_ns: int) -> tuple[np.ndarray, bool]:
        """This tick's command from the landed chunks, into the history (until `executed` replaces it
        with what the safety filter let through). Second: no landed chunk covers the tick (the first plan
        is in flight) and the command holds."""
        target = self._target(self.tick_count)
        command = hold_at if target is None else target
        self.history.append(command, now_ns)
        self.last_command = command
        return command, target is None
