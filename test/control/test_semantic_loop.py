"""SemanticLoop: frame matching, instruction, prompt state, rate cap, the not-encoding reason and the
encode figures, with a fake policy whose encode() records what it was given (no torch)."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from asyncvla_ros.control.semantic_loop import SemanticLoop, SemanticLoopConfig

MS = 1_000_000
S = 1_000_000_000


class FakePolicy:
    def __init__(self, cameras=("front", "wrist"), state_in_prompt=False, size=8):
        self.config = SimpleNamespace(backbone=SimpleNamespace(camera_names=cameras, image_height_px=size, image_width_px=size,
                                                               state_in_prompt=state_in_prompt))
        self.calls = []

    def encode(self, images, instruction, state=None, stamp_ns=0):
        self.calls.append((images, instruction, state, stamp_ns))
        return ("condition", stamp_ns)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def frame(value, size=8):
    return np.full((size, size, 3), value, np.uint8)


def make(policy=None, clock=None, **kw):
    policy = policy or FakePolicy()
    config = SemanticLoopConfig(camera_names=policy.config.backbone.camera_names, **kw)
    return policy, SemanticLoop(policy, config, wall_clock=clock or FakeClock())


def add_set(loop, stamp, value=0):
    loop.add_frame("front", stamp, frame(value))
    loop.add_frame("wrist", stamp + 5 * MS, frame(value + 1))


def test_step_encodes_the_newest_set_once_with_its_stamps_and_instruction():
    policy, loop = make()
    loop.set_instruction("  put the red cube in the blue area ")
    add_set(loop, 1 * S, 10)
    add_set(loop, 1 * S + 100 * MS, 20)
    item = loop.step(1 * S + 120 * MS)
    assert item.seq == 1 and item.stamp_ns == 1 * S + 100 * MS and item.instruction == "put the red cube in the blue area"
    assert item.frame_stamps_ns == (1 * S + 100 * MS, 1 * S + 105 * MS) and item.state_stamp_ns == 0
    images, instruction, state, stamp = policy.calls[0]
    assert [int(i[0, 0, 0]) for i in images] == [20, 21] and state is None and stamp == item.stamp_ns
    assert item.condition == ("condition", item.stamp_ns)
    assert loop.step(1 * S + 130 * MS) is None  # that set is used up; the older one is never encoded after it
    assert len(policy.calls) == 1


def test_images_are_resized_to_the_policys_size():
    policy, loop = make(policy=FakePolicy(size=4))
    loop.set_instruction("x")
    loop.add_frame("front", 0, frame(1, 16))
    loop.add_frame("wrist", 0, frame(2, 16))
    loop.step(0)
    assert [i.shape for i in policy.calls[0][0]] == [(4, 4, 3), (4, 4, 3)]


def test_rate_cap_is_on_the_step_clock_and_a_clock_that_jumps_back_releases_it():
    policy, loop = make(max_rate_hz=5.0)
    loop.set_instruction("x")
    for i in range(6):
        add_set(loop, i * 50 * MS)
        loop.step(i * 50 * MS)
    assert [c[3] for c in policy.calls] == [0, 200 * MS]  # every 200 ms of the step clock
    assert loop.seconds_until_allowed(250 * MS) == pytest.approx(0.15)
    assert loop.seconds_until_allowed(400 * MS) == 0.0
    assert loop.seconds_until_allowed(10 * MS) == 0.0  # a looped bag: time went back


def test_a_refresh_request_lets_the_next_set_through_the_rate_cap_once_and_names_its_reason():
    policy, loop = make(max_rate_hz=1.0)
    loop.set_instruction("x")
    add_set(loop, 0)
    assert loop.step(0).trigger == ""
    add_set(loop, 100 * MS)
    assert loop.step(100 * MS) is None  # the 1 Hz base rate holds it off
    loop.request_refresh("confidence fell")
    assert loop.seconds_until_allowed(150 * MS) == 0.0
    item = loop.step(150 * MS)
    assert item.trigger == "confidence fell" and item.stamp_ns == 100 * MS and loop.stats().triggered == 1
    add_set(loop, 200 * MS)
    assert loop.step(200 * MS) is None  # once: the base rate again
    assert loop.seconds_until_allowed(200 * MS) == pytest.approx(0.95)


def test_rate_in_hz_that_does_not_divide_a_second_still_lands_on_the_tick():
    assert SemanticLoopConfig(max_rate_hz=20 / 3).min_interval_ns == 150 * MS
    assert SemanticLoopConfig().min_interval_ns == 0


def test_the_reason_it_is_not_encoding():
    clock = FakeClock()
    policy, loop = make(clock=clock, max_skew_s=0.02)
    assert loop.stats().reason == "no instruction"
    loop.set_instruction("x")
    assert loop.stats().reason == "no camera frame received yet"
    loop.add_frame("front", 0, frame(0))
    assert loop.step(0) is None and loop.stats().reason == "no fresh frame from ['wrist']"
    loop.add_frame("wrist", 50 * MS, frame(0))
    assert loop.step(60 * MS) is None and loop.stats().reason == "no new frame set within 20 ms skew"
    clock.t += 3.0
    assert loop.stats().reason == "no camera frame for 3.0 s"
    assert not loop.stats().encoding


def test_a_policy_that_reads_the_state_waits_for_one_and_gets_the_latest():
    policy, loop = make(policy=FakePolicy(state_in_prompt=True))
    loop.set_instruction("x")
    add_set(loop, 0)
    assert loop.step(10 * MS) is None and loop.stats().reason.startswith("waiting for a joint state")
    loop.set_state(np.arange(6.0), 3 * MS)
    item = loop.step(10 * MS)
    assert item.state_stamp_ns == 3 * MS and np.array_equal(policy.calls[0][2], np.arange(6.0))


def test_stats_cover_the_last_five_seconds_of_wall_time():
    clock = FakeClock()
    policy, loop = make(clock=clock)
    loop.set_instruction("x")
    for i in range(10):
        add_set(loop, i * 100 * MS)
        loop.step(i * 100 * MS)
        clock.t += 0.1
    s = loop.stats()
    assert s.seq == 10 and s.refresh_hz == pytest.approx(2.0) and s.encoding and s.reason == ""
    assert s.frames_received == 20 and np.isfinite(s.encode_ms_p50)
    clock.t += 5.0
    assert loop.stats().refresh_hz == 0.0 and not loop.stats().encoding


def test_bad_input_is_refused_with_a_reason():
    policy, loop = make()
    with pytest.raises(ValueError, match="empty instruction"):
        loop.set_instruction("   ")
    assert loop.set_instruction("a") and not loop.set_instruction("a ")
    with pytest.raises(ValueError, match="unknown camera 'top'"):
        loop.add_frame("top", 0, frame(0))
    with pytest.raises(ValueError, match="differ from the policy's cameras"):
        SemanticLoop(FakePolicy(), SemanticLoopConfig(camera_names=("wrist", "front")))
    with pytest.raises(ValueError, match="max_rate_hz must be a number in"):
        SemanticLoopConfig(max_rate_hz=-1.0)
    with pytest.raises(ValueError, match="camera_names"):
        SemanticLoopConfig(camera_names=())


def test_callbacks_worker_and_diagnostics_threads_share_it_safely():
    """Frames from one thread, steps from another, stats from a third: no set is encoded twice, seq and
    stamps only grow, and the figures always describe finished encodes."""
    policy, loop = make(clock=FakeClock(), max_frame_age_s=30.0)
    loop.set_instruction("x")
    now = 21 * S  # after every frame's stamp, within max_frame_age_s of all of them
    stop = threading.Event()
    items, seen_seq, errors = [], [], []

    def cameras():
        for i in range(2000):
            add_set(loop, (i + 1) * 10 * MS)
        stop.set()

    def worker():
        while True:
            done = stop.is_set()
            item = loop.step(now)
            if item is not None:
                items.append(item)
            elif done:
                return

    def diagnostics():
        try:
            while not stop.is_set():
                s = loop.stats()
                seen_seq.append(s.seq)
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=f) for f in (cameras, worker, diagnostics)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and items
    stamps = [i.stamp_ns for i in items]
    assert stamps == sorted(set(stamps))  # each set once, newer each time
    assert [i.seq for i in items] == list(range(1, len(items) + 1))
    assert seen_seq == sorted(seen_seq) and loop.stats().seq == len(items) == len(policy.calls)
