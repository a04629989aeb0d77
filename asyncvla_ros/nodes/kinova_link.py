"""The ROS side of the `kinova_gen2_ros` backend: a publisher of joint velocities and a subscription to
the running Gen2 driver's joint states, created on the driver node and handed to the backend.

Velocity messages: `std_msgs/msg/Float64MultiArray` (rad/s, joint order; ros2_control velocity
controllers) or `kinova_msgs/msg/JointVelocity` (deg/s in joint1..joint7; Kinova's driver), imported
only when configured, so a machine without kinova_msgs gets a clear configure error.
"""

from __future__ import annotations

import math
import time

from sensor_msgs.msg import JointState

from asyncvla_ros.drivers import DriverError
from asyncvla_ros.nodes.conversions import from_time


class KinovaTopicLink:
    def __init__(self, node, backend) -> None:
        cfg = backend.config
        self.node = node
        self.backend = backend
        if cfg.velocity_type == "kinova_msgs/msg/JointVelocity":
            try:
                from kinova_msgs.msg import JointVelocity
            except ImportError as err:
                raise DriverError(f"velocity_type {cfg.velocity_type} needs the kinova_msgs package sourced: {err}") from err
            if len(backend.joint_names) > 7:
                raise DriverError("kinova_msgs/JointVelocity carries at most 7 joints")

            def build(v):
                msg = JointVelocity()
                for i, value in enumerate(v, start=1):
                    setattr(msg, f"joint{i}", math.degrees(float(value)))
                return msg

            msg_type = JointVelocity
        else:
            from std_msgs.msg import Float64MultiArray

            def build(v):
                return Float64MultiArray(data=[float(x) for x in v])

            msg_type = Float64MultiArray
        self.publisher = node.create_publisher(msg_type, cfg.velocity_topic, 10)
        self.subscription = node.create_subscription(JointState, cfg.joint_state_topic, self.on_state, 10)
        backend.attach(lambda v: self.publisher.publish(build(v)))

    def on_state(self, msg: JointState) -> None:
        try:
            stamp = from_time(msg.header.stamp) or time.time_ns()  # an unstamped state counts as captured now
            self.backend.on_joint_state(msg.name, msg.position, msg.velocity, stamp)
        except DriverError as err:
            self.node.rejections.reject(f"joint state from the Gen2 driver rejected: {err}")

    def destroy(self) -> None:
        self.node.destroy_subscription(self.subscription)
        self.node.destroy_publisher(self.publisher)
