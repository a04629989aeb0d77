"""Bags that are truncated, corrupt or carry foreign types, in both storages (hypothesis draws where a
file is cut and what junk follows): `asyncvla-ros rerun` and `asyncvla-ros replay` end with status 1 and
one error line naming the problem, never a traceback and never a hang (progress bars aside)."""

import contextlib
import io
import shutil
import subprocess
import sys
import traceback

import pytest

pytest.importorskip("rosbags")

from hypothesis import given, settings, strategies as st  # noqa: E402

from asyncvla_ros.bags.topics import IMAGE, JOINT_STATE  # noqa: E402
from asyncvla_ros.bags.types import typestore  # noqa: E402
from asyncvla_ros.bags.writer import BagWriter, BagWriterConfig  # noqa: E402

from .test_bag_files import T0, write_bag  # noqa: E402

TRIED: list[str] = []


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    made = {storage: write_bag(root / storage, storage).config.path for storage in ("mcap", "sqlite3")}
    yield made
    print(f"\ncorrupt bags tried: {len(TRIED)} ({', '.join(sorted(set(TRIED)))})")


def run(command: str, bag, tmp_path) -> tuple[int, str]:
    """Status and stderr of `asyncvla-ros COMMAND BAG`. `rerun` runs in this process (a traceback that
    escapes counts as stderr too); `replay` in its own, since rclpy initialises once per process."""
    if command == "replay":
        proc = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "replay", str(bag), "--no-clock"],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stderr
    from asyncvla_ros.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["rerun", str(bag), "--out", str(tmp_path / "out")])
        except Exception:
            traceback.print_exc()
            code = -1
    return code, err.getvalue()


def assert_one_line_error(code: int, err: str, what: str) -> None:
    """Status 1, no traceback, and a line that says what is wrong: the CLI's one error line, or the
    player node's ERROR log lines (one per skipped message, throttled, and its summary); INFO lines and
    transformers' loading bar aside."""
    assert code == 1, f"{what}: status {code}\n{err}"
    lines = [line for line in err.strip().splitlines()
             if not line.startswith(("(ASYNCVLA_ROS_TRACEBACK", "Loading weights", "\rLoading weights", "[INFO]"))]
    assert "Traceback" not in err and lines, f"{what}:\n{err}"
    assert len(lines) == 1 or all(line.startswith("[ERROR]") for line in lines), f"{what}:\n{err}"


def data_file(bag):
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


@settings(max_examples=16)
@given(storage=st.sampled_from(["mcap", "sqlite3"]), target=st.sampled_from(["data", "metadata"]),
       cut=st.floats(0.0, 0.95), junk=st.binary(max_size=256))
def test_a_truncated_or_corrupt_bag_ends_the_rerun_with_one_error_line(bags, tmp_path_factory, storage, target, cut, junk):
    tmp = tmp_path_factory.mktemp("case")
    bag = shutil.copytree(bags[storage], tmp / "bag")
    path = data_file(bag) if target == "data" else bag / "metadata.yaml"
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)] + junk)
    TRIED.append(f"{storage} {target} cut")
    assert_one_line_error(*run("rerun", bag, tmp), f"rerun on {storage} with {target} cut at {cut:.2f}")


def write_foreign(bag, storage: str, how: str) -> None:
    """A bag as another tool might record it."""
    store = typestore()
    string = bytes(store.serialize_cdr(store.types["std_msgs/msg/String"](data="hello"), "std_msgs/msg/String"))
    with BagWriter(BagWriterConfig(bag, storage)) as w:
        if how == "foreign_type":  # only types and topics the graph does not use
            w.add_topic("/odom", "std_msgs/msg/String")
            w.write("/odom", string, T0)
            return
        for topic in ("/front/image_raw", "/wrist/image_raw"):
            w.add_topic(topic, IMAGE)
        w.add_topic("/joint_states", "std_msgs/msg/String" if how == "wrong_type_on_topic" else JOINT_STATE)
        for i in range(3):
            payload = string if how == "wrong_type_on_topic" else bytes([0, 1, 0, 0]) + bytes(range(7 * i, 7 * i + 9))
            w.write("/joint_states", payload, T0 + i)
            for topic in ("/front/image_raw", "/wrist/image_raw"):
                w.write(topic, bytes([0, 1, 0, 0, 255, 255, 255, 255]), T0 + i)  # a length prefix past the end


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("command", ["rerun", "replay"])
@pytest.mark.parametrize("how", ["truncated", "no_data_file", "empty_dir", "a_file", "foreign_type", "wrong_type_on_topic",
                                 "garbage_messages"])
def test_a_bag_that_is_not_one_of_ours_ends_with_one_error_line(bags, tmp_path, storage, command, how):
    bag = tmp_path / "bag"
    if how in ("truncated", "no_data_file"):
        shutil.copytree(bags[storage], bag)
        if how == "truncated":
            raw = data_file(bag).read_bytes()
            data_file(bag).write_bytes(raw[: len(raw) // 2])
        else:
            data_file(bag).unlink()
    elif how == "empty_dir":
        bag.mkdir()
    elif how == "a_file":
        bag.write_bytes(b"not a bag")
    else:
        write_foreign(bag, storage, how)
    TRIED.append(how)
    code, err = run(command, bag, tmp_path)
    if command == "replay" and how == "foreign_type":  # a player plays any topic the graph does not own
        assert code == 0 and "end of bag: 1 messages published" in err, err
        return
    assert_one_line_error(code, err, f"{command} on {storage} bag: {how}")


SLOW_BUILD = """
import sys, time
from rclpy.parameter import Parameter
from asyncvla_ros.nodes.bag_player_node import BagPlayerNode
from asyncvla_ros.nodes.runner import run

def build():  # a machine busy enough that the node is added to the executor after the bag could have ended
    node = BagPlayerNode(parameter_overrides=[Parameter("bag", value=sys.argv[1]), Parameter("publish_clock", value=False)])
    time.sleep(1.0)
    return node

sys.exit(run(build, []))
"""


def test_a_replay_that_ends_before_its_node_is_spun_still_fails(tmp_path):
    """The bag of garbage messages ends in milliseconds: its status must not depend on whether that
    happens before the runner has the node (it came back 0 once, on a fresh clone under load)."""
    write_foreign(tmp_path / "bag", "mcap", "garbage_messages")
    proc = subprocess.run([sys.executable, "-c", SLOW_BUILD, str(tmp_path / "bag")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "end of bag: 0 messages published, 9 not" in proc.stderr, proc.stderr
