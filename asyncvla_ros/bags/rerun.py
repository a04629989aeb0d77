"""Deterministic offline re-run of the semantic and action code on a recorded bag.

The bag's camera frames, joint states and instruction drive `policy.encode` (the semantic node's
work) and `ActionLoop` (the action node's per-tick logic: act(), temporal ensembling, history) in bag
time, not real time, with seeded noise: the same bag, model and seed give the same chunks, bit for bit.

Two schedules:
- The bag holds the action node's chunks (with `tick` and `seed`): the re-run ticks exactly where the
  node ticked. A tick number without a recorded chunk was a hold, which restarts ensembling and
  history, so the re-run holds there too; each chunk is planned from the joint state it was planned
  from, the semantic refresh it used (re-encoded from the same frames, and the same prompt state), and
  the node's seed for that tick. With the same model the recorded chunks come out again (once the
  re-run's history matches the node's: from the node's first tick, or after its first hold).
- Otherwise it ticks at `control_rate_hz` over the recorded joint states.

Options change one mechanism at a time: `semantic_rate_hz` re-encodes the bag's newest frames at
that rate instead of using the recorded refreshes (stale semantics at low rates), `afm=False` plans
with SFM alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from asyncvla_ros.bags.recording import Frame, Recording, SemanticRecord, stamp_ns
from asyncvla_ros.bags.types import BagError
from asyncvla_ros.control.action_loop import ActionLoop, ActionLoopConfig
from asyncvla_ros.control.semantic_store import SemanticItem
from asyncvla_ros.imaging import resize_rgb
from asyncvla_ros.policy.config import ACT_MODES

logger = logging.getLogger(__name__)

SYNC_DEPTH = 4  # frames per camera the semantic node's synchroniser keeps (FrameSyncConfig.depth)


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
    instruction: str = ""  # "" = the recorded one
    joint_names: tuple[str, ...] = ()  # () = the recorded chunks' joint names, else the joint states' names

    def __post_init__(self) -> None:
        if self.mode and self.mode not in ACT_MODES:
            raise ValueError(f"RerunConfig.mode must be one of {ACT_MODES}, got {self.mode!r}")
        for name in ("semantic_rate_hz", "semantic_latency_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"RerunConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("control_rate_hz", "max_semantic_age_s", "max_state_age_s", "max_skew_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RerunConfig.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class TickRecord:
    """One control tick of the re-run, beside what the action node did at that tick (if recorded)."""

    tick: int
    now_ns: int  # bag time the tick ran at (the joint state's stamp for recorded ticks)
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
    inputs_complete: bool = True  # False: a frame or joint state the node used is missing from the bag

    @property
    def semantic_age_s(self) -> float:
        """How old the semantics were at the state the chunk was planned from (ActionChunk.semantic_age_s), s."""
        return (self.state_stamp_ns - self.semantic_stamp_ns) * 1e-9 if self.chunk is not None else float("nan")


@dataclass
class EncodeRecord:
    seq: int
    stamp_ns: int  # capture stamp of the frame set
    usable_ns: int  # bag time from which ticks may use it
    encode_ms: float  # wall time of this re-run's encode
    recorded_encode_ms: float = float("nan")


@dataclass
class RerunResult:
    bag: str
    model_id: str
    recorded_model_id: str
    joint_names: tuple[str, ...]
    mode: str
    seed: int
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


def frame_set(rec: Recording, cameras, max_skew_ns: int, received_by_ns: int | None = None,
              stamp: int | None = None) -> list[Frame] | None:
    """One frame per camera as the semantic node's synchroniser would pick it.

    Only frames received by `received_by_ns` count (the newest SYNC_DEPTH of each camera); the anchor
    is the first camera's newest frame whose partners lie within the skew. With `stamp`, only the set
    whose capture stamp (its oldest frame) equals it is returned.
    """
    def buffer(cam):
        frames = rec.frames[cam]
        if received_by_ns is not None:
            frames = [f for f in frames if f.log_ns <= received_by_ns]
            frames.sort(key=lambda f: f.stamp_ns)
            frames = frames[-SYNC_DEPTH:]
        return frames

    buffers = [buffer(cam) for cam in cameras]
    if any(not b for b in buffers):
        return None
    for anchor in reversed(buffers[0]):
        if stamp is not None and not stamp <= anchor.stamp_ns <= stamp + max_skew_ns:
            continue
        chosen = [anchor]
        for other in buffers[1:]:
            best = min(other, key=lambda f: abs(f.stamp_ns - anchor.stamp_ns))
            if abs(best.stamp_ns - anchor.stamp_ns) > max_skew_ns:
                break
            chosen.append(best)
        else:
            if stamp is None or min(f.stamp_ns for f in chosen) == stamp:
                return chosen
    return None


def exact_frames(rec: Recording, cameras, stamps_ns) -> list[Frame] | None:
    """The frames with exactly these capture stamps (one per camera), or None if one is not in the bag."""
    out = []
    for cam, stamp in zip(cameras, stamps_ns):
        frame = next((f for f in rec.frames[cam] if f.stamp_ns == stamp), None)
        if frame is None:
            return None
        out.append(frame)
    return out


class Rerun:
    """Drives one policy over one recording; `run()` returns the ticks. Not thread-safe."""

    def __init__(self, policy, model_id: str, rec: Recording, config: RerunConfig) -> None:
        self.policy, self.model_id, self.rec, self.config = policy, model_id, rec, config
        rec.index()
        bb, e = policy.config.backbone, policy.config.expert
        self.cameras = tuple(bb.camera_names)
        self.image_size = (bb.image_height_px, bb.image_width_px)
        self.uses_state = bb.state_in_prompt
        self.skew_ns = int(config.max_skew_s * 1e9)
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
        self.loop = ActionLoop(policy, ActionLoopConfig(
            control_rate_hz=config.control_rate_hz, max_semantic_age_s=config.max_semantic_age_s,
            max_state_age_s=config.max_state_age_s, ensemble_decay=config.ensemble_decay, mode=self.mode, seed=self.seed))
        self.cache: dict[int, SemanticItem] = {}
        self.encodes: list[EncodeRecord] = []
        self.approximate: set[int] = set()  # semantic seqs re-encoded from other frames than the node's

    # -- semantics ---------------------------------------------------------------------------------

    def instruction_at(self, t_ns: int, record: SemanticRecord | None = None) -> str:
        if self.config.instruction:
            return self.config.instruction
        if record is not None and record.instruction:
            return record.instruction
        said = [text for log_ns, text in self.rec.instructions if log_ns <= t_ns and text]
        if said:
            return said[-1]
        recorded = [r.instruction for r in self.rec.semantics.values() if r.instruction]
        if recorded:
            return recorded[0]
        raise BagError("the bag records no instruction (/instruction or semantic features): pass one")

    def encode(self, seq: int, frames: list[Frame], usable_ns: int, instruction: str, prompt_state_stamp: int,
               recorded_ms: float = float("nan")) -> SemanticItem:
        state = None
        if self.uses_state:
            sample = self.rec.state_at(prompt_state_stamp) if prompt_state_stamp else None
            sample = sample or self.rec.latest_state(usable_ns)
            if sample is None:
                raise BagError(f"semantic refresh {seq}: the policy reads the joint state in its prompt and none was recorded by then")
            state = self.rec.state_positions(sample, self.joint_names)
        images = [resize_rgb(f.rgb, self.image_size) for f in frames]
        stamp = min(f.stamp_ns for f in frames)
        t0 = time.perf_counter()
        cond = self.policy.encode(images, instruction, state=state, stamp_ns=stamp)
        encode_ms = (time.perf_counter() - t0) * 1e3
        self.encodes.append(EncodeRecord(seq, stamp, usable_ns, encode_ms, recorded_ms))
        return SemanticItem(cond, seq, stamp, instruction, encode_ms)

    def recorded_semantics(self, seq: int, stamp: int) -> SemanticItem:
        """Re-encode the refresh the action node used: the same frames, instruction and prompt state."""
        if seq in self.cache:
            return self.cache[seq]
        record = self.rec.semantics.get(seq)
        received_by = record.log_ns if record else None
        if record is not None and len(record.frame_stamps_ns) == len(self.cameras):
            frames = exact_frames(self.rec, self.cameras, record.frame_stamps_ns)
        else:  # a bag from before SemanticFeatures.frame_stamps: pick the set as the synchroniser would have
            frames = frame_set(self.rec, self.cameras, self.skew_ns, received_by, stamp)
            if frames is None:
                frames = frame_set(self.rec, self.cameras, self.skew_ns, None, stamp)
        if frames is None:
            # A frame the node encoded is missing from the bag (a recorder that fell behind a depth-2
            # camera publisher): encode the newest set there was instead, and say this chunk's inputs differ.
            frames = frame_set(self.rec, self.cameras, self.skew_ns, received_by or stamp + self.skew_ns)
            if frames is None:
                raise BagError(f"no recorded frames of {list(self.cameras)} by capture stamp {stamp} "
                               f"(semantic refresh {seq}): were the cameras recorded?")
            logger.warning("semantic refresh %d: its frames (stamp %d) are not all in the bag; re-encoding the newest "
                           "set recorded by then", seq, stamp)
            self.approximate.add(seq)
        item = self.encode(seq, frames, record.log_ns if record else stamp, self.instruction_at(stamp, record),
                           record.state_stamp_ns if record else 0, record.encode_ms if record else float("nan"))
        self.cache[seq] = item
        return item

    def simulated_refreshes(self, t_end_ns: int) -> list[tuple[int, int, list[Frame]]]:
        """(usable_ns, started_ns, frames) of refreshes every 1/semantic_rate_hz s of bag time."""
        period = int(1e9 / self.semantic_rate_hz)
        latency = int(self.config.semantic_latency_s * 1e9)
        t = self.rec.start_ns
        last_stamp = -1
        out = []
        while t <= t_end_ns:
            frames = frame_set(self.rec, self.cameras, self.skew_ns, received_by_ns=t)
            if frames is not None and min(f.stamp_ns for f in frames) > last_stamp:  # never the same frames twice
                last_stamp = max(f.stamp_ns for f in frames)
                out.append((t + latency, t, frames))
            t += period
        return out

    # -- ticks -------------------------------------------------------------------------------------

    def schedule(self) -> list[tuple[int, int, object | None, int, object | None]]:
        """(tick, now_ns, state sample or None, recorded log_ns, recorded chunk or None) per tick."""
        if self.with_ticks:
            by_tick = {int(c.tick): (log_ns, c) for log_ns, c in self.rec.chunks}
            out = []
            for k in range(1, max(by_tick) + 1):
                if k not in by_tick:
                    out.append((k, 0, None, 0, None))  # the node held at this tick
                    continue
                log_ns, chunk = by_tick[k]
                stamp = stamp_ns(chunk.header.stamp)
                sample = self.rec.state_at(stamp)
                if sample is None:  # the joint state the node planned from is missing: the one recorded before it
                    sample = self.rec.latest_state(log_ns)
                out.append((k, stamp, sample, log_ns, chunk))
            return out
        period = int(1e9 / self.config.control_rate_hz)
        t, k, out = self.rec.states[0].log_ns, 0, []
        while t <= self.rec.states[-1].log_ns:
            k += 1
            out.append((k, t, self.rec.latest_state(t), 0, None))
            t += period
        return out

    def run(self) -> RerunResult:
        t_wall = time.perf_counter()
        ticks = self.schedule()
        simulated = self.config.semantic_rate_hz > 0 or not (self.with_ticks or self.rec.semantics)
        refreshes = []
        self.semantic_rate_hz = self.config.semantic_rate_hz
        if simulated:
            t_end = max(now for _, now, *_ in ticks) if ticks else self.rec.start_ns
            if not self.semantic_rate_hz:
                self.semantic_rate_hz = 5.0  # the paper's upper refresh rate
                logger.warning("the bag records no semantic refreshes: re-encoding its frames at %.1f Hz", self.semantic_rate_hz)
            refreshes = self.simulated_refreshes(t_end)
        recorded_by_log = sorted(self.rec.semantics.values(), key=lambda r: r.log_ns)
        current: SemanticItem | None = None
        n_sim = 0
        out = []
        # Whether the re-run's ensembling and history equal the node's. A tick without a recorded chunk is
        # a hold when the next chunk's chunk_id follows the previous one; when ids are skipped, the
        # recorder missed chunks (DDS discovery at start-up, or a recorder that fell behind) and the
        # node's history is unknown until its next hold.
        history_known, last_id, gap = True, 0, False
        for k, now, sample, log_ns, chunk in ticks:
            if sample is None and chunk is None and self.with_ticks:
                result = self.loop.tick(now, None, None, 0)  # a hold of the node: restart ensembling and history
                out.append(self._record(k, result, now, 0, None, 0))
                gap = True
                continue
            if chunk is not None:
                if int(chunk.chunk_id) != last_id + 1:
                    history_known = False
                elif gap:
                    history_known = True
                last_id, gap = int(chunk.chunk_id), False
            if simulated:
                while refreshes and refreshes[0][0] <= now:
                    usable, started, frames = refreshes.pop(0)
                    n_sim += 1
                    current = self.encode(n_sim, frames, usable, self.instruction_at(started), 0)
            elif chunk is not None:
                current = self.recorded_semantics(int(chunk.semantic_seq), stamp_ns(chunk.semantic_stamp))
            else:
                usable = [r for r in recorded_by_log if r.log_ns <= now]
                current = self.recorded_semantics(usable[-1].seq, usable[-1].stamp_ns) if usable else None
            state = self.rec.state_positions(sample, self.joint_names) if sample is not None else None
            result = self.loop.tick(now, current, state, sample.stamp_ns if sample is not None else 0)
            record = self._record(k, result, now, sample.stamp_ns if sample is not None else 0, chunk, log_ns)
            if chunk is not None:
                inputs = (sample is not None and sample.stamp_ns == stamp_ns(chunk.header.stamp)
                          and int(chunk.semantic_seq) not in self.approximate)
                record.inputs_complete = inputs and history_known
                history_known = history_known and inputs  # a chunk from other inputs leaves other history behind
            out.append(record)
        recorded_ids = {r.model_id for r in self.rec.semantics.values() if r.model_id}
        return RerunResult(
            bag=self.rec.path, model_id=self.model_id, recorded_model_id=", ".join(sorted(recorded_ids)) or "unknown",
            joint_names=self.joint_names, mode=self.mode, seed=self.seed,
            schedule="recorded ticks" if self.with_ticks else f"{self.config.control_rate_hz:g} Hz ticks",
            semantics=f"re-encoded at {self.semantic_rate_hz:g} Hz" if simulated else "recorded refreshes",
            start_ns=self.rec.start_ns, ticks=out, encodes=self.encodes, wall_s=time.perf_counter() - t_wall,
            config=self.config)

    def _record(self, k, result, now, state_stamp, chunk, log_ns) -> TickRecord:
        return TickRecord(k, now, state_stamp, result.holding, result.reason, result.command, result.chunk,
                          result.chunk_id, result.semantic_seq, result.semantic_stamp_ns, chunk, log_ns)


def run_rerun(policy, model_id: str, rec: Recording, config: RerunConfig) -> RerunResult:
    """Re-run `policy` over `rec` (see the module docstring)."""
    return Rerun(policy, model_id, rec, config).run()
