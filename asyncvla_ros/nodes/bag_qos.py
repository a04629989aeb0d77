"""rclpy QoS and message classes for the bag recorder and player (topics.py names QoS kinds and types)."""

from __future__ import annotations

import importlib

from rclpy.qos import QoSProfile

from asyncvla_ros.nodes.qos import FEATURES, LATCHED


def subscribe_qos(kind: str) -> QoSProfile | int:
    """What the recorder subscribes with: latched topics transient-local (to get the last instruction);
    the semantic features with liveliness AUTOMATIC (compatible with the publisher's MANUAL_BY_TOPIC,
    and a recorder must not care about the lease)."""
    return LATCHED if kind == "latched" else QoSProfile(depth=50)


def publish_qos(kind: str) -> QoSProfile | int:
    """What the player publishes with: the same QoS as the graph's own publisher of that topic."""
    return {"latched": LATCHED, "semantic": FEATURES}.get(kind, 10)


def message_class(msgtype: str):
    """`sensor_msgs/msg/JointState` -> the rclpy message class.

    Raises:
        ValueError: a type whose Python package is not installed in this environment.
    """
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"message type {msgtype} is not available here ({err}): install its ROS 2 package") from err
