"""Training samples from recorded episodes: what the action module sees at step t.

For a step t of an episode of length T (decoupling paper, Sec. 3):
- the action target is the chunk a[t : t+L]; steps past the episode's end repeat the last action and
  are marked invalid (excluded from the loss);
- the state is the current one, s[t] (the action side always reads a fresh state);
- the history is the K executed actions a[t-K : t]; slots before the episode began are marked empty;
- an episode that someone other than the labeller drove (DAgger: the policy acted, the expert labels)
  carries what was executed, for the history, and a chunk label per step, the expert's look-ahead from
  that step's state, for the target;
- the observation (images, and the state if the policy puts it in its prompt) comes from step
  max(episode start, t - d): d = 0 without time-misalignment training, else d ~ U{0..L} (up to one
  chunk older, as the action node sees semantics at deployment); the sample says how many steps older
  it is (`semantic_delay`), which a policy with the semantic-age input reads, at the episodes' `fps`;
  in an episode with images at every Nth step only (`image_stride`, sim demonstrations rendered
  sparsely), that step is the newest rendered one at or before it, so the delay grows by up to N - 1.

The dataset is a deterministic accessor; every random draw (indices, delays, history noise) is made
by the trainer from its own generator, so a resumed run draws exactly what the original would have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from asyncvla_ros.policy.normalization import FeatureStats, Normalizer


@dataclass
class Episode:
    """One demonstration."""

    states: np.ndarray  # (T, state_dim) robot state per step
    actions: np.ndarray  # (T, action_dim) commanded action per step
    task: str  # the instruction
    frames: Callable[[int], list[np.ndarray]]  # step -> one HxWx3 uint8 image per camera
    env_states: np.ndarray | None = None  # (T, env_dim) privileged scene state per step, where recorded
    executed: np.ndarray | None = None  # (T, action_dim) what the arm was sent, where it was not `actions`
    chunk_labels: np.ndarray | None = None  # (T, L, action_dim) the target chunk from each step, where given
    fps: float | None = None  # steps per second it was recorded at, where known
    image_stride: int = 1  # `frames` has the steps 0, N, 2N, ... only

    def __post_init__(self) -> None:
        if self.states.ndim != 2 or self.actions.ndim != 2 or len(self.states) != len(self.actions) or len(self.states) == 0:
            raise ValueError(f"Episode: states {self.states.shape} and actions {self.actions.shape} must be (T, dim) with the same T > 0")
        if self.executed is not None and self.executed.shape != self.actions.shape:
            raise ValueError(f"Episode: executed {self.executed.shape} must have the actions' shape {self.actions.shape}")
        if self.chunk_labels is not None and (self.chunk_labels.ndim != 3 or self.chunk_labels.shape[0] != len(self.actions)
                                              or self.chunk_labels.shape[2] != self.actions.shape[1]):
            raise ValueError(f"Episode: chunk_labels {self.chunk_labels.shape} must be (T, L, action_dim) with T, action_dim = {self.actions.shape}")
        if self.image_stride < 1:
            raise ValueError(f"Episode: image_stride must be >= 1, got {self.image_stride}")
        if self.env_states is not None and (self.env_states.ndim != 2 or len(self.env_states) != len(self.states)):
            raise ValueError(f"Episode: env_states {self.env_states.shape} must be (T, dim) with the states' T = {len(self.states)}")


class ChunkSamples:
    """Index space over all steps of all episodes, and the sample at (index, delay)."""

    def __init__(self, episodes: Sequence[Episode], chunk_len: int, history_len: int) -> None:
        if not episodes:
            raise ValueError("ChunkSamples needs at least one episode")
        self.episodes = list(episodes)
        short = [e.chunk_labels.shape[1] for e in self.episodes if e.chunk_labels is not None and e.chunk_labels.shape[1] < chunk_len]
        if short:
            raise ValueError(f"ChunkSamples: an episode's chunk labels are {short[0]} steps long, the policy's chunks {chunk_len}")
        self.chunk_len = chunk_len
        self.history_len = history_len
        lengths = np.array([len(e.states) for e in self.episodes])
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # global index of each episode's step 0
        self._total = int(lengths.sum())

    def __len__(self) -> int:
        return self._total

    def locate(self, index: int) -> tuple[int, int]:
        """(episode number, step within it) of a global index."""
        if not 0 <= index < self._total:
            raise IndexError(f"sample index {index} outside [0, {self._total})")
        ep = int(np.searchsorted(self._starts, index, side="right") - 1)
        return ep, index - int(self._starts[ep])

    @property
    def fps(self) -> float:
        """The episodes' common recording rate, steps per second (what turns a semantic delay into an age).

        Raises:
            ValueError: an episode's rate is unknown, or two differ.
        """
        rates = {e.fps for e in self.episodes}
        if None in rates or len(rates) != 1:
            raise ValueError(f"the episodes' recording rates are {sorted(rates, key=str)} (fps); a semantic age needs "
                             "one known rate for all of them")
        return float(rates.pop())

    @property
    def has_env_state(self) -> bool:
        """Whether every episode carries the privileged scene state."""
        return all(e.env_states is not None for e in self.episodes)

    def env_state_stats(self) -> FeatureStats:
        """Statistics of the scene state (the auxiliary target's normalisation)."""
        if not self.has_env_state:
            raise ValueError("the episodes carry no environment state (observation.environment_state)")
        return FeatureStats.from_data(np.concatenate([e.env_states for e in self.episodes]))

    def normalizer(self, delta_actions: bool = False) -> Normalizer:
        """Normalisation statistics of every state and action in the episodes; with `delta_actions`, also
        of every chunk target relative to its state, a[t+i] - s[t] for i < chunk_len within the episode."""
        delta = None
        if delta_actions:
            deltas = [e.actions[i:] - e.states[:len(e.states) - i] for e in self.episodes for i in range(min(self.chunk_len, len(e.states)))]
            delta = FeatureStats.from_data(np.concatenate(deltas), min_std=1e-3)
        return Normalizer(
            state=FeatureStats.from_data(np.concatenate([e.states for e in self.episodes])),
            action=FeatureStats.from_data(np.concatenate([e.actions for e in self.episodes])),
            delta=delta,
        )

    def sample(self, index: int, delay: int = 0) -> dict:
        """Raw (unnormalised) sample; see the module docstring."""
        ep_i, t = self.locate(index)
        ep = self.episodes[ep_i]
        T, L, K = len(ep.actions), self.chunk_len, self.history_len
        future = np.arange(t, t + L)
        action_valid = future < T
        if ep.chunk_labels is not None:
            actions, action_valid = ep.chunk_labels[t, :L], np.ones(L, dtype=bool)
        else:
            actions = ep.actions[np.minimum(future, T - 1)]  # (L, A): past the end, repeat the last action
        past = np.arange(t - K, t)
        history_valid = past >= 0
        executed = ep.actions if ep.executed is None else ep.executed
        history = executed[np.maximum(past, 0)]  # (K, A): empty slots are masked, their values unused
        obs_t = max(0, t - int(delay))
        obs_t -= obs_t % ep.image_stride
        sample = {
            "images": ep.frames(obs_t),
            "task": ep.task,
            "obs_state": ep.states[obs_t].astype(np.float32),
            "state": ep.states[t].astype(np.float32),
            "history": history.astype(np.float32),
            "history_valid": history_valid,
            "actions": actions.astype(np.float32),
            "action_valid": action_valid,
            "semantic_delay": t - obs_t,  # steps from the observation to the state
        }
        if ep.env_states is not None:
            sample["env_state"] = ep.env_states[obs_t].astype(np.float32)  # what the observed images show
        return sample
