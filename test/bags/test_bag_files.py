"""The bag writer and reader without a ROS graph: definitions embedded, an independent MCAP reader
(mcap + mcap-ros2-support) decodes our custom types, sqlite3 storage, payload stripping, bad input."""

import numpy as np
import pytest

pytest.importorskip("rosbags")

from asyncvla_ros.bags.reader import PlayConfig, messages, open_bag, parse_remap, plan
from asyncvla_ros.bags.topics import ACTION_CHUNK, JOINT_STATE, SEMANTIC_FEATURES, select
from asyncvla_ros.bags.types import BagError, typestore
from asyncvla_ros.bags.writer import BagWriter, BagWriterConfig

T0 = 1_700_000_000_123_456_789


def _time(store, ns):
    return store.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)


def _header(store, ns):
    return store.types["std_msgs/msg/Header"](stamp=_time(store, ns), frame_id="")


def chunk(store, i):
    return store.types[ACTION_CHUNK](
        header=_header(store, T0 + i), semantic_stamp=_time(store, T0 - 5), semantic_age_s=0.25, semantic_seq=3,
        chunk_id=i, tick=10 + i, seed=10 + i, hold_ticks=0, chunk_mode="ensemble", plan_delay_ticks=0,
        context=np.array([False, False]), command_stamp=_time(store, T0 + i + 1),
        history_answered=np.array([True, False]), step_period_s=0.05, joint_names=["a", "b"], horizon=2, action_dim=2,
        actions=np.array([1, 2, 3, 4 + i], np.float32), sfm_actions=np.array([0, 1, 2, 3], np.float32),
        confidence=np.array([0.2, 0.9], np.float32), regenerated=np.array([True, False]), sfm_time_ms=1.5,
        rater_time_ms=0.5, afm_time_ms=1.0, total_time_ms=3.25, mode="asyncvla")


def features(store, payload: bytes):
    blob = store.types["asyncvla_ros/msg/TensorBlob"](name="keys.0", dtype="float32", shape=np.array([1, 2], np.uint32),
                                                        data=np.frombuffer(payload, np.uint8))
    return store.types[SEMANTIC_FEATURES](
        header=_header(store, T0), seq=7, instruction="put the red cube in the blue area", model_id="m",
        feature_kind="prefix_kv_cache", tensors=[blob], num_prefix_tokens=5, encode_time_ms=30.0, trigger="", transport="inline",
        state_stamp=_time(store, 0), frame_stamps=[_time(store, T0), _time(store, T0 + 5)])


def joints(store, i):
    return store.types[JOINT_STATE](header=_header(store, T0 + i), name=["a", "b"], position=np.array([0.1 * i, -0.2]),
                                    velocity=np.zeros(0), effort=np.zeros(0))


def write_bag(path, storage="mcap", payload=False):
    store = typestore()
    with BagWriter(BagWriterConfig(path, storage, payload)) as w:
        w.add_topic("/joint_states", JOINT_STATE)
        w.add_topic("/action_chunk", ACTION_CHUNK)
        w.add_topic("/semantic_features", SEMANTIC_FEATURES, "semantic")
        w.add_topic("/instruction", "std_msgs/msg/String", "latched")
        w.write("/instruction", bytes(store.serialize_cdr(store.types["std_msgs/msg/String"](data="go"), "std_msgs/msg/String")), T0)
        w.write("/semantic_features", bytes(store.serialize_cdr(features(store, bytes(range(8))), SEMANTIC_FEATURES)), T0 + 1)
        for i in range(5):
            w.write("/joint_states", bytes(store.serialize_cdr(joints(store, i), JOINT_STATE)), T0 + 10_000_000 * i)
            w.write("/action_chunk", bytes(store.serialize_cdr(chunk(store, i), ACTION_CHUNK)), T0 + 10_000_000 * i + 1)
    return w


def test_mcap_bag_reads_with_the_independent_mcap_reader_custom_types_decoded(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    write_bag(tmp_path / "bag")
    files = list((tmp_path / "bag").glob("*.mcap"))
    assert len(files) == 1
    decoded = {}
    with open(files[0], "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for schema, channel, message, msg in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append((schema, message, msg))
            assert schema.encoding == "ros2msg"
    assert {t: len(v) for t, v in decoded.items()} == {"/instruction": 1, "/semantic_features": 1, "/joint_states": 5, "/action_chunk": 5}
    schema, message, c = decoded["/action_chunk"][3]
    assert schema.name == "asyncvla_ros/msg/ActionChunk" and b"uint64 tick" in schema.data  # our .msg text, embedded
    assert (c.tick, c.seed, c.chunk_id, c.mode) == (13, 13, 3, "asyncvla")
    assert (c.header.stamp.sec, c.header.stamp.nanosec) == divmod(T0 + 3, 10**9)
    assert list(c.actions) == [1, 2, 3, 7] and list(c.regenerated) == [True, False]
    assert message.log_time == T0 + 30_000_001
    _, _, f = decoded["/semantic_features"][0]
    assert f.tensors[0].name == "keys.0" and list(f.tensors[0].shape) == [1, 2] and len(f.tensors[0].data) == 0
    assert f.encode_time_ms == 30.0 and f.instruction.startswith("put the red cube")
    assert [(t.sec, t.nanosec) for t in f.frame_stamps] == [divmod(T0, 10**9), divmod(T0 + 5, 10**9)]


def test_sqlite3_bag_round_trips_bytes_and_keeps_the_payload_on_request(tmp_path):
    store = typestore()
    write_bag(tmp_path / "bag", "sqlite3", payload=True)
    assert list((tmp_path / "bag").glob("*.db3"))
    reader = open_bag(tmp_path / "bag")
    try:
        assert reader.message_count == 12
        seen = {}
        for conn, log_ns, raw in reader.messages():
            seen.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
        assert bytes(seen["/semantic_features"][0].tensors[0].data) == bytes(range(8))
        assert [int(c.chunk_id) for c in seen["/action_chunk"]] == [0, 1, 2, 3, 4]
        assert bytes(store.serialize_cdr(seen["/joint_states"][2], JOINT_STATE)) == bytes(store.serialize_cdr(joints(store, 2), JOINT_STATE))
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
        assert qos["/instruction"].durability.name == "TRANSIENT_LOCAL" and qos["/semantic_features"].liveliness.name == "MANUAL_BY_TOPIC"
    finally:
        reader.close()


def test_a_writer_that_is_closed_early_leaves_a_readable_bag(tmp_path):
    store = typestore()
    w = BagWriter(BagWriterConfig(tmp_path / "bag"))
    w.add_topic("/joint_states", JOINT_STATE)
    w.write("/joint_states", bytes(store.serialize_cdr(joints(store, 1), JOINT_STATE)), T0)
    w.close()
    w.write("/joint_states", bytes(store.serialize_cdr(joints(store, 2), JOINT_STATE)), T0 + 1)  # late callback: dropped
    reader = open_bag(tmp_path / "bag")
    assert reader.message_count == 1
    reader.close()


def test_play_plan_selects_remaps_and_replays_the_latched_instruction_after_an_offset(tmp_path):
    write_bag(tmp_path / "bag")
    reader = open_bag(tmp_path / "bag")
    try:
        cfg = PlayConfig(topics=("joint_states", "/instruction"), remap=("/joint_states:=/recorded/joint_states",),
                         start_offset_s=0.015)
        topics = plan(reader, cfg)
        assert [(t.topic, t.out_topic, t.qos_kind) for t in topics] == [
            ("/joint_states", "/recorded/joint_states", "default"), ("/instruction", "/instruction", "latched")]
        out = list(messages(reader, topics, cfg.start_offset_s))
        assert out[0][1].topic == "/instruction" and out[0][0] == T0 + 15_000_000  # latched one, at the start
        assert [s for s, t, _ in out[1:]] == [T0 + 20_000_000, T0 + 30_000_000, T0 + 40_000_000]
        with pytest.raises(BagError, match="not in the bag; it holds"):
            plan(reader, PlayConfig(topics=("/nope",)))
    finally:
        reader.close()


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        open_bag(tmp_path / "missing")
    write_bag(tmp_path / "bag")
    with pytest.raises(ValueError, match="exists"):
        BagWriterConfig(tmp_path / "bag")
    with pytest.raises(ValueError, match="storage must be one of"):
        BagWriterConfig(tmp_path / "new", storage="rosbag1")
    with pytest.raises(ValueError, match="is not one of the graph's topics"):
        select(["/not_a_topic"])
    with pytest.raises(ValueError, match="FROM:=TO"):
        parse_remap(["/a"])
    with pytest.raises(ValueError, match=r"PlayConfig.rate must be a number in \[0.01, 100.0\]"):
        PlayConfig(rate=0)
    w = BagWriter(BagWriterConfig(tmp_path / "other"))
    with pytest.raises(BagError, match="unknown to the bag typestore"):
        w.add_topic("/x", "nobody_msgs/msg/Nothing")
    with pytest.raises(BagError, match="not declared"):
        w.write("/joint_states", b"", T0)
    w.close()


def test_metadata_carries_the_type_hashes_rosidl_computed_for_our_messages(tmp_path):
    import json

    import yaml

    from asyncvla_ros.bags.types import message_dir

    write_bag(tmp_path / "bag")
    meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    hashes = {t["topic_metadata"]["type"]: t["topic_metadata"]["type_description_hash"] for t in meta["topics_with_message_count"]}
    assert all(h.startswith("RIHS01_") for h in hashes.values()), hashes
    built = [message_dir() / f"{name}.json" for name in ("ActionChunk", "SemanticFeatures")]
    if not all(p.is_file() for p in built):
        pytest.skip("needs the colcon install space (rosidl's type hashes are in share/asyncvla_ros/msg/*.json)")
    for path in built:
        rosidl = json.loads(path.read_text())["type_hashes"][0]
        assert hashes[rosidl["type_name"]] == rosidl["hash_string"]


def test_recording_finds_states_by_stamp_and_by_log_time():
    from asyncvla_ros.bags.recording import Recording, StateSample

    # Logged out of stamp order, as a recorder under load logs them: the stamp look-up must not pick
    # a state stamped after the one asked for because it was logged earlier.
    names = ("a",)
    rec = Recording(path="", start_ns=0, states=[StateSample(100, 1000, names, np.zeros(1)),
                                                  StateSample(300, 1100, names, np.ones(1)),
                                                  StateSample(200, 1200, names, np.full(1, 2.0))])
    rec.index()
    assert rec.state_at(200).log_ns == 1200 and rec.state_at(250) is None
    assert rec.latest_state_stamped(250).stamp_ns == 200 and rec.latest_state_stamped(99) is None
    assert rec.latest_state_stamped(300).stamp_ns == 300
    assert rec.latest_state(1150).stamp_ns == 300  # by log time: the newest received by then
