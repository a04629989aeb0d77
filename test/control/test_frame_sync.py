import pytest

from asyncvla_ros.control.frame_sync import FrameSyncConfig, FrameSynchronizer
from asyncvla_ros.control.semantic_store import LatestSemantics, SemanticItem

MS = 1_000_000


def sync(**kw):
    return FrameSynchronizer(FrameSyncConfig(camera_names=("front", "wrist"), **{"max_skew_s": 0.02, "max_age_s": 0.2, **kw}))


def test_newest_matching_set_is_taken_once():
    s = sync()
    for t in (0, 33, 66):
        s.add("front", t * MS, f"f{t}")
        s.add("wrist", (t + 5) * MS, f"w{t}")
    got = s.take(70 * MS)
    assert got.frames == ["f66", "w66"] and got.stamp_ns == 66 * MS
    assert s.take(70 * MS) is None and "no new frame set" in s.stats.last_reason


def test_a_set_is_found_by_its_capture_stamp():
    """What a re-run asks for a recorded refresh: the set whose oldest frame has this stamp, matched the same way."""
    s = sync()
    for t in (0, 33, 66):
        s.add("front", t * MS, f"f{t}")
        s.add("wrist", (t + 5) * MS, f"w{t}")
    assert s.take(70 * MS, stamp_ns=33 * MS).frames == ["f33", "w33"]
    assert s.take(70 * MS, stamp_ns=38 * MS) is None  # no set starts there


def test_skewed_cameras_give_no_set():
    s = sync()
    s.add("front", 100 * MS, "f")
    s.add("wrist", 150 * MS, "w")
    assert s.take(160 * MS) is None
    assert "skew" in s.stats.last_reason


def test_stale_frames_are_dropped_counted_and_never_used():
    s = sync()
    s.add("front", 0, "old-f")
    s.add("wrist", 0, "old-w")
    assert s.take(500 * MS) is None
    assert s.stats.dropped_stale == 2
    assert "no fresh frame" in s.stats.last_reason
    s.add("front", 490 * MS, "f")
    s.add("wrist", 495 * MS, "w")
    assert s.take(500 * MS).frames == ["f", "w"]


def test_unknown_camera_and_bad_config_raise():
    with pytest.raises(ValueError, match="unknown camera 'side'"):
        sync().add("side", 0, None)
    with pytest.raises(ValueError, match="max_skew_s"):
        FrameSyncConfig(camera_names=("a",), max_skew_s=0)


def test_latest_semantics_never_goes_back_in_time():
    store = LatestSemantics()
    assert store.latest() is None
    assert store.commit(SemanticItem(None, 1, 200, "x"))
    assert not store.commit(SemanticItem(None, 2, 100, "x"))
    assert store.latest().seq == 1 and store.rejected_out_of_order == 1
