"""Teleoperation node: a demonstrator in place of the policy, publishing on `joint_command` what the
safety filter then passes to the driver, so that recording the graph records demonstrations.

Sources:
- `expert`: the sim's scripted expert (`asyncvla_ros.sim.teleop.ExpertTeleop`), following the sim
  driver's `sim/world_state`; one command per world update, while the driver reports itself active.
  The task it demonstrates (the world's instruction) goes out on the latched `instruction` topic, so a
  recording holds it for `bag-to-dataset`. With `expert.episodes` > 1 it asks the driver for the next
  scene (`sim/reset_episode`) after each episode (`sim/teleop.py`), and the driver marks each start on
  `episode`.
- `so100_leader`: LeRobot's SO100 leader arm, moved by hand (`asyncvla_ros.drivers.so100.leader`,
  parameters `so100_leader.*`): its joint positions in the follower's units, `so100_leader.rate_hz`
  times a second. A failed read sends nothing (the safety filter's command timeout then holds the
  follower) and is reported on `diagnostics`.

`ros2 launch asyncvla_ros robot.launch.py teleop:=expert` starts it instead of the semantic and action
nodes; `asyncvla-ros record` beside it records the episode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String, UInt32

from asyncvla_ros.drivers.base import DriverError
from asyncvla_ros.drivers.so100.leader import SO100LeaderConfig, SO100LeaderSource
from asyncvla_ros.msg import SimWorldState
from asyncvla_ros.nodes.conversions import joint_state, world_snapshot
from asyncvla_ros.nodes.params import ERROR, OK, WARN, Rejections, declare_config, diagnostics, steady_timer
from asyncvla_ros.nodes.qos import LATCHED
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param
from asyncvla_ros.sim.teleop import ExpertEpisodesConfig

SOURCES = ("expert", "so100_leader")


@dataclass
class TeleopNodeConfig:
    source: str = param("expert", "what demonstrates: expert = the sim's scripted expert (robot:=sim); so100_leader = "
                                  "LeRobot's SO100 leader arm (parameters so100_leader.*)", choices=SOURCES)


CONFIGS = (("", TeleopNodeConfig), ("expert.", ExpertEpisodesConfig), ("so100_leader.", SO100LeaderConfig))


class TeleopNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("teleop", **kwargs)
        self.config = declare_config(self, TeleopNodeConfig)
        self.driver_active = False
        self.commands = 0
        self.last_error = ""
        self.rejections = Rejections(self)
        self.cmd_pub = self.create_publisher(JointState, "joint_command", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        if self.config.source == "expert":
            from asyncvla_ros.sim.teleop import ExpertTeleop

            self.source = ExpertTeleop(declare_config(self, ExpertEpisodesConfig, "expert."))
            self.reset_pub = self.create_publisher(UInt32, "sim/reset_episode", 10)
            self.instruction_pub = self.create_publisher(String, "instruction", LATCHED)
            self.instruction = None
            self.create_subscription(DiagnosticArray, "diagnostics", self.on_diagnostics, 10)
            self.create_subscription(SimWorldState, "sim/world_state", self.on_world, 2)
        else:
            leader = declare_config(self, SO100LeaderConfig, "so100_leader.")
            self.source = SO100LeaderSource(leader)
            self.source.connect()  # DriverError: the node exits saying what to do
            self.create_timer(1.0 / leader.rate_hz, self.on_leader)
        steady_timer(self, 1.0, self.publish_diagnostics)
        self.get_logger().info(f"teleop source {self.config.source}: commands on joint_command")

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        # The driver reports OK while active (motion enabled), WARN while inactive: the expert waits for it.
        for status in msg.status:
            if status.name == "driver":
                self.driver_active = status.level == DiagnosticStatus.OK

    def on_world(self, msg: SimWorldState) -> None:
        try:
            target = self.source.command(world_snapshot(msg), msg.episode_seed, msg.instruction, self.driver_active)
        except ValueError as err:
            self.rejections.reject(f"world state rejected: {err}")
            return
        if msg.instruction != self.instruction:
            self.instruction = msg.instruction
            self.instruction_pub.publish(String(data=msg.instruction))
        if target is not None:
            self.cmd_pub.publish(joint_state(self.source.joint_names, target, self.get_clock().now().nanoseconds))
            self.commands += 1
        seed = self.source.next_episode()
        if seed is not None:
            self.get_logger().info(f"episode {self.source.episodes} ended; asking the driver for scene seed {seed}")
            self.reset_pub.publish(UInt32(data=seed))

    def on_leader(self) -> None:
        try:
            positions = self.source.read()
        except DriverError as err:
            self.last_error = str(err)
            self.rejections.reject(f"{err}; nothing sent")
            return
        self.last_error = ""
        self.cmd_pub.publish(joint_state(self.source.joint_names, positions, self.get_clock().now().nanoseconds))
        self.commands += 1

    def publish_diagnostics(self) -> None:
        s, values = self.source, {"source": self.config.source, "commands": self.commands, "rejected": self.rejections.count}
        if self.config.source == "expert":
            level, message = (OK, s.phase.lower()) if self.driver_active else (WARN, "waiting for the driver to be active")
            values.update(episodes=s.episodes, solved=s.solved)
        else:
            level, message = (ERROR, self.last_error) if self.last_error else (OK, "following the leader arm")
        self.diag_pub.publish(diagnostics(self, time.time_ns(), "teleop", level, message, values))

    def close(self) -> None:
        self.source.close()


def main(args=None) -> None:
    run_and_exit(TeleopNode, args)
