"""The topics of the node graph (launch_graph.py) a recording holds, with their types and QoS kinds.

Topic names are absolute (the graph runs in the root namespace). QoS kinds: "default" (reliable,
volatile, keep last 10), "latched" (transient local: a late subscriber gets the last message, as the
instruction is published) and "semantic" (the semantic features' manual liveliness, see nodes/qos.py).
"""

from __future__ import annotations

from asyncvla_ros.launch_graph import CAMERAS

IMAGE = "sensor_msgs/msg/Image"
JOINT_STATE = "sensor_msgs/msg/JointState"
ACTION_CHUNK = "asyncvla_ros/msg/ActionChunk"
SEMANTIC_FEATURES = "asyncvla_ros/msg/SemanticFeatures"

# topic -> (message type, QoS kind)
GRAPH_TOPICS: dict[str, tuple[str, str]] = {
    **{f"/{cam}/image_raw": (IMAGE, "default") for cam in CAMERAS},
    **{f"/{cam}/camera_info": ("sensor_msgs/msg/CameraInfo", "default") for cam in CAMERAS},
    "/joint_states": (JOINT_STATE, "default"),
    "/instruction": ("std_msgs/msg/String", "latched"),
    "/semantic_features": (SEMANTIC_FEATURES, "semantic"),
    "/action_chunk": (ACTION_CHUNK, "default"),
    "/semantic_refresh": ("asyncvla_ros/msg/RefreshRequest", "default"),
    "/joint_command": (JOINT_STATE, "default"),
    "/safe_joint_command": (JOINT_STATE, "default"),
    "/safe_joint_trajectory": ("trajectory_msgs/msg/JointTrajectory", "default"),
    "/safety_events": ("asyncvla_ros/msg/SafetyEvent", "default"),
    "/estop": ("std_msgs/msg/Bool", "default"),
    "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", "default"),
    "/sim/world_state": ("asyncvla_ros/msg/SimWorldState", "default"),
    # Demonstrations: a message marks the start of a new episode (`bag-to-dataset --split-topic /episode`);
    # the sim driver publishes one at each reset that `/sim/reset_episode` (the new seed) asks for.
    "/episode": ("std_msgs/msg/String", "default"),
    "/sim/reset_episode": ("std_msgs/msg/UInt32", "default"),
}

QOS_KINDS = ("default", "latched", "semantic")


def absolute(topic: str) -> str:
    """`joint_states` -> `/joint_states` (the graph's topics are in the root namespace)."""
    topic = topic.strip()
    return topic if topic.startswith("/") else "/" + topic


def select(topics) -> dict[str, tuple[str, str]]:
    """The graph topics named in `topics` (all of them when empty).

    Raises:
        ValueError: a name that is not one of the graph's topics (the message lists them).
    """
    if not topics:
        return dict(GRAPH_TOPICS)
    chosen = {}
    for name in topics:
        topic = absolute(name)
        if topic not in GRAPH_TOPICS:
            raise ValueError(f"topic {name!r} is not one of the graph's topics: {sorted(GRAPH_TOPICS)}")
        chosen[topic] = GRAPH_TOPICS[topic]
    return chosen
