"""The control-rate action module: latest semantics + current state + own history -> next command.

Each tick replans a full chunk with `policy.act()` (SFM -> rater -> AFM), blends it with the still
valid earlier chunks (temporal ensembling) and returns the target for this tick. When what the plan
would rest on is too old it holds instead, and says why:

- joint state missing or older than `max_state_age_s`: no command at all (the arm's position is unknown;
  the safety filter would refuse anything anyway);
- semantics missing or older than `max_semantic_age_s`, or their publisher gone: hold the last target.

A stamp further ahead of `now` than the same limit counts as stale too: clocks that disagree.

Ensembling and history restart after every hold, since plans made before it no longer match the arm.
The history holds what the arm was sent: each tick's command, replaced by what the safety filter let
through for it once that is known (`executed`), the same in the node, the re-run and the eval.
"""

from __future__ import annotations

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


@dataclass
class ActionLoopConfig:
    control_rate_hz: float = param(20.0, "control ticks per second, Hz", low=1.0, high=1000.0)
    max_semantic_age_s: float = param(1.0, "hold when the encoded observation is older than this, s", low=0.01, high=60.0)
    max_state_age_s: float = param(0.25, "send nothing when the joint state is older than this, s", low=0.001, high=10.0)
    ensemble_decay: float = param(0.1, "temporal ensembling: ACT's m in w_i = exp(-m i), i = 0 oldest", low=0.0, high=10.0)
    mode: str = param("asyncvla", "how chunks are planned: SFM -> rater -> AFM, SFM alone, or AFM on a random mask", choices=ACT_MODES)
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


class ActionLoop:
    """Stateful per-tick logic of the action node (not thread-safe: one control thread calls `tick`)."""

    def __init__(self, policy, config: ActionLoopConfig) -> None:
        e = policy.config.expert
        self.policy = policy
        self.config = config
        self.ensembler = TemporalEnsembler(e.chunk_len, e.action_dim, config.ensemble_decay)
        self.history = ActionHistory(e.history_len, e.action_dim)
        self.tick_count = 0
        self.chunk_id = 0
        self.last_command: np.ndarray | None = None

    def _hold(self, reason: str, command: np.ndarray | None, **info) -> TickResult:
        self.ensembler.reset()
        self.history.clear()
        return TickResult(self.tick_count, command, True, reason, None, self.chunk_id, plan_ms=0.0, **info)

    def tick(self, now_ns: int, semantics: SemanticItem | None, state: np.ndarray | None, state_stamp_ns: int,
             semantics_alive: bool = True, executed: np.ndarray | None = None) -> TickResult:
        """Plan and return this tick's command (or a hold).

        Args:
            now_ns: current time.
            semantics: latest committed semantic condition, or None.
            state: current joint positions (policy order), or None.
            state_stamp_ns: capture stamp of `state`.
            semantics_alive: False when the semantic publisher is known to be gone.
            executed: (L, action_dim) the chunk another run executed at this tick (a re-run following the
                recorded node where this loop's plan may differ): it, not this loop's plan, enters the
                ensembling and the history. The plan is still made and returned.
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
        chunk = self.policy.act(semantics.condition, state, self.history.array(), mode=c.mode, seed=c.seed + self.tick_count)
        self.chunk_id += 1
        command = self._execute(chunk.actions if executed is None else executed, now_ns)
        plan_ms = (time.perf_counter() - t0) * 1e3
        return TickResult(self.tick_count, command, False, "", chunk, self.chunk_id, plan_ms=plan_ms,
                          history_answered=answered, **info)

    def follow(self, actions: np.ndarray | None, now_ns: int = 0) -> np.ndarray | None:
        """Advance one tick on a chunk planned elsewhere, without planning: a re-run following the recorded
        node through ticks it cannot plan itself (their inputs predate the bag). `actions` enters the
        ensembling, and the resulting command the history, as if this loop had planned it. None: the chunk
        is unknown (the recorder missed it) and only the tick and chunk counters advance.

        Returns:
            This tick's command, or None when `actions` is None.
        """
        self.tick_count += 1
        self.chunk_id += 1
        return self._execute(actions, now_ns) if actions is not None else None

    def executed(self, stamp_ns: int, positions: np.ndarray) -> bool:
        """What the safety filter let through for the command of the tick at `stamp_ns` (policy order):
        it replaces that command in the history, so the policy is conditioned on what the arm was sent,
        clamps included. False when that tick's command is no longer in the history."""
        return self.history.replace(stamp_ns, positions)

    def skip_to(self, tick: int, chunk_id: int) -> None:
        """Count on from another run's tick and chunk counters (a re-run of a bag recorded from a running
        node starts mid-way: seeds follow the tick); ensembling and history start empty."""
        self.tick_count, self.chunk_id = int(tick), int(chunk_id)
        self.ensembler.reset()
        self.history.clear()
        self.last_command = None

    def _execute(self, actions: np.ndarray, now_ns: int) -> np.ndarray:
        """Blend `actions` (planned at this tick) into the ensemble; the result is the command, and history
        (until `executed` replaces it with what the safety filter let through)."""
        self.ensembler.add(self.tick_count, actions)
        command = self.ensembler.target(self.tick_count)
        self.history.append(command, now_ns)
        self.last_command = command
        return command
