"""The semantic side of a re-run: a bag's frames, joint states and instruction through the core
`SemanticLoop`, the semantic node's own loop, in bag time.

- Recorded refreshes (`recorded(seq, stamp)`): re-encode what the semantic node encoded for refresh
  `seq`: the frames named by its SemanticFeatures.frame_stamps, its instruction and prompt state.
  A refresh whose frames were captured before the bag's first frame of a camera is *before the
  recording* (a bag started on a running graph): it cannot be re-encoded, and the re-run skips the
  chunks resting on it. A frame missing from inside the bag (a recorder that fell behind) is replaced
  by the newest set the node's synchroniser could have taken by then, and the refresh is marked
  approximate; with none, the refresh is *not in the bag*. A refresh known only by its stamp (its own
  message is not in the bag, or the bag is from before frame_stamps): the set whose oldest frame has
  that stamp, matched as the synchroniser matches, and approximate too, since the node's synchroniser
  chose among the frames it had received by then (on recorded sim bags up to 3 % of such matches picked
  another frame than the node had).
- Simulated refreshes (`simulated(now)`): the loop with its rate cap, fed the bag's messages in the
  order they were received, stepped at the re-run's ticks (stale semantics at low rates).
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncvla_ros.bags.recording import Frame, Recording, SemanticRecord
from asyncvla_ros.bags.types import BagError
from asyncvla_ros.control.frame_sync import FrameSet, FrameSyncConfig, FrameSynchronizer
from asyncvla_ros.control.semantic_loop import EncodeRequest, SemanticLoop, SemanticLoopConfig
from asyncvla_ros.control.semantic_store import SemanticItem

EXACT, APPROXIMATE = "exact", "approximate"
BEFORE_RECORDING, NOT_IN_BAG = "before the recording", "not in the bag"
SKIPPED = (BEFORE_RECORDING, NOT_IN_BAG)  # statuses whose chunks the re-run cannot plan


@dataclass
class Refresh:
    seq: int
    stamp_ns: int
    status: str  # EXACT | APPROXIMATE | BEFORE_RECORDING | NOT_IN_BAG
    item: SemanticItem | None = None  # None when skipped


@dataclass
class EncodeRecord:
    seq: int
    stamp_ns: int  # capture stamp of the frame set
    usable_ns: int  # bag time from which ticks may use it
    encode_ms: float  # wall time of this re-run's encode
    recorded_encode_ms: float = float("nan")


class SemanticReplay:
    """Args:
        policy, rec: the re-run's policy and recording.
        config: the semantic node's frame matching (and, for simulated refreshes, the rate).
        instruction: overrides the recorded one when not empty.
        joint_names: the robot's joints, in the bag's state order (for policies that read the state in their prompt).
        joint_space: the policy's joints and units against them (control/joint_space.py), or None.
    """

    def __init__(self, policy, rec: Recording, config: SemanticLoopConfig, instruction: str, joint_names, joint_space=None) -> None:
        self.rec, self.config, self.joint_names = rec, config, tuple(joint_names)
        self.loop = SemanticLoop(policy, config, joint_space=joint_space)
        self.cameras = tuple(config.camera_names)
        self.override = instruction
        self.encodes: list[EncodeRecord] = []
        self._refreshes: dict[int, Refresh] = {}
        # The first frame of each camera in the bag: anything captured before it is before the recording.
        self._first_stamp = {c: min((f.stamp_ns for f in rec.frames[c]), default=None) for c in self.cameras}
        self._by_stamp = {c: {f.stamp_ns: f for f in rec.frames[c]} for c in self.cameras}
        self._events = self._inputs_in_log_order()
        self._fed = 0
        self._pending: list[tuple[int, SemanticItem]] = []  # simulated: (usable_ns, item)
        self._current: SemanticItem | None = None  # simulated: the newest usable refresh
        fallback = self.override or next((r.instruction for r in sorted(rec.semantics.values(), key=lambda r: r.log_ns)
                                          if r.instruction), "")
        if fallback:
            self.loop.set_instruction(fallback)
        self._instructed = bool(fallback) or any(kind == 2 for _, kind, _, _ in self._events)

    # -- recorded refreshes ------------------------------------------------------------------------

    def recorded(self, seq: int, stamp_ns: int) -> Refresh:
        """Refresh `seq` (capture stamp `stamp_ns`, from the chunk that used it), re-encoded once."""
        if seq not in self._refreshes:
            self._refreshes[seq] = self._rebuild(seq, stamp_ns, self.rec.semantics.get(seq))
        return self._refreshes[seq]

    def _rebuild(self, seq: int, stamp: int, record: SemanticRecord | None) -> Refresh:
        stamps = record.frame_stamps_ns if record is not None and len(record.frame_stamps_ns) == len(self.cameras) else ()
        if stamps:
            frames = [self._by_stamp[c].get(s) for c, s in zip(self.cameras, stamps)]
            if all(f is not None for f in frames):
                return self._encode(seq, frames, record, EXACT)
            if any(f is None and self._predates(c, s) for c, s, f in zip(self.cameras, stamps, frames)):
                return Refresh(seq, stamp, BEFORE_RECORDING)
        else:  # a bag from before frame_stamps, or the refresh's own message is not in the bag
            frames = self._matched(stamp)
            if frames is not None:
                return self._encode(seq, frames, record, APPROXIMATE)
            if any(self._predates(c, stamp) for c in self.cameras):
                return Refresh(seq, stamp, BEFORE_RECORDING)
        frames = self._newest_by(record.log_ns if record is not None else stamp + int(self.config.max_skew_s * 1e9))
        if frames is None:
            return Refresh(seq, stamp, NOT_IN_BAG)
        return self._encode(seq, frames, record, APPROXIMATE)

    def _predates(self, camera: str, stamp: int) -> bool:
        first = self._first_stamp[camera]
        return first is None or stamp < first

    def _matched(self, stamp: int) -> list[Frame] | None:
        """The frame set with capture stamp `stamp`, matched by the node's synchroniser."""
        skew = int(self.config.max_skew_s * 1e9)
        return self._take({c: [f for f in self.rec.frames[c] if stamp - skew <= f.stamp_ns <= stamp + skew] for c in self.cameras},
                          stamp + skew, stamp)

    def _newest_by(self, t_ns: int) -> list[Frame] | None:
        """The newest set the synchroniser held at bag time `t_ns` (frames received by then)."""
        return self._take({c: sorted((f for f in self.rec.frames[c] if f.log_ns <= t_ns), key=lambda f: f.log_ns) for c in self.cameras},
                          t_ns)

    def _take(self, frames: dict[str, list[Frame]], now_ns: int, stamp_ns: int | None = None) -> list[Frame] | None:
        sync = FrameSynchronizer(FrameSyncConfig(self.cameras, self.config.max_skew_s, self.config.max_frame_age_s))
        for camera, items in frames.items():
            for f in items:
                sync.add(camera, f.stamp_ns, f)
        taken = sync.take(now_ns, stamp_ns)
        return list(taken.frames) if taken is not None else None

    def _encode(self, seq: int, frames: list[Frame], record: SemanticRecord | None, status: str) -> Refresh:
        said = [text for log_ns, text in self.rec.instructions if text and log_ns <= min(f.log_ns for f in frames)]
        instruction = (self.override or (record.instruction if record is not None else "") or (said[-1] if said else "")
                       or self.loop.instruction)
        if not instruction:
            raise BagError("the bag records no instruction (/instruction or semantic features): pass one")
        state, state_stamp = None, 0
        if self.loop.uses_state:
            sample = self.rec.state_at(record.state_stamp_ns) if record is not None and record.state_stamp_ns else None
            sample = sample or self.rec.latest_state(record.log_ns if record is not None else min(f.log_ns for f in frames))
            if sample is None:
                raise BagError(f"semantic refresh {seq}: the policy reads the joint state in its prompt and none was recorded by then")
            state, state_stamp = self.rec.state_positions(sample, self.joint_names), sample.stamp_ns
        request = EncodeRequest(FrameSet([f.rgb for f in frames], [f.stamp_ns for f in frames]), instruction, state, state_stamp)
        item = self.loop.encode(request, seq=seq)
        usable = record.log_ns if record is not None else item.stamp_ns
        self.encodes.append(EncodeRecord(seq, item.stamp_ns, usable, item.encode_ms, record.encode_ms if record else float("nan")))
        return Refresh(seq, item.stamp_ns, status, item)

    # -- simulated refreshes -----------------------------------------------------------------------

    def simulated(self, now_ns: int, latency_ns: int = 0) -> SemanticItem | None:
        """The newest simulated refresh usable at bag time `now_ns` (None before the first): the loop,
        fed every message received by `now_ns`, encodes when its rate cap allows; an encode becomes
        usable `latency_ns` after it started."""
        if not self._instructed:
            raise BagError("the bag records no instruction (/instruction or semantic features): pass one")
        self._feed(now_ns)
        item = self.loop.step(now_ns)
        if item is not None:
            self._pending.append((now_ns + latency_ns, item))
            self.encodes.append(EncodeRecord(item.seq, item.stamp_ns, now_ns + latency_ns, item.encode_ms))
        usable = None
        while self._pending and self._pending[0][0] <= now_ns:
            usable = self._pending.pop(0)[1]
        self._current = usable or self._current
        return self._current

    def _inputs_in_log_order(self) -> list[tuple[int, int, str, object]]:
        events: list[tuple[int, int, str, object]] = []
        for camera in self.cameras:
            events += [(f.log_ns, 0, camera, f) for f in self.rec.frames[camera]]
        if self.loop.uses_state:
            events += [(s.log_ns, 1, "", s) for s in self.rec.states]
        if not self.override:
            events += [(log_ns, 2, "", text) for log_ns, text in self.rec.instructions if text]
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    def _feed(self, t_ns: int) -> None:
        while self._fed < len(self._events) and self._events[self._fed][0] <= t_ns:
            _, kind, camera, payload = self._events[self._fed]
            self._fed += 1
            if kind == 0:
                self.loop.add_frame(camera, payload.stamp_ns, payload.rgb)
            elif kind == 1:
                self.loop.set_state(self.rec.state_positions(payload, self.joint_names), payload.stamp_ns)
            else:
                self.loop.set_instruction(payload)

