"""config/asyncvla.rviz subscribes to the topics the visualizer publishes and draws the ghost's frames."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip("visualization_msgs", reason="needs the ROS 2 message wheels")

from asyncvla_ros.nodes.chunk_markers import GHOST_NAMESPACE, MARKERS_TOPIC, PATH_TOPIC, SFM_PATH_TOPIC  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "config" / "asyncvla.rviz"


def displays():
    return {d["Class"].split("/")[-1] + ":" + d["Name"]: d for d in yaml.safe_load(CONFIG.read_text())["Visualization Manager"]["Displays"]}


def test_topics_match_the_visualizer():
    d = displays()
    assert d["MarkerArray:Chunk"]["Topic"]["Value"] == f"/{MARKERS_TOPIC}"
    assert {v["Topic"]["Value"] for k, v in d.items() if k.startswith("Path:")} == {f"/{PATH_TOPIC}", f"/{SFM_PATH_TOPIC}"}


def test_robot_and_ghost_models():
    models = [v for k, v in displays().items() if k.startswith("RobotModel:")]
    by_prefix = {m["TF Prefix"]: m for m in models}
    assert set(by_prefix) == {"", GHOST_NAMESPACE}
    assert by_prefix[""]["Description Topic"]["Value"] == "/robot_description"
    assert by_prefix[GHOST_NAMESPACE]["Description Topic"]["Value"] == f"/{GHOST_NAMESPACE}/robot_description"
    # robot_state_publisher latches its description: the display must ask for the latched sample.
    assert all(m["Description Topic"]["Durability Policy"] == "Transient Local" for m in models)
