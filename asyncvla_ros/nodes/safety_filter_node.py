"""Safety filter node: every command to the driver passes `SafetyFilter` first.

Subscribes to the action node's `joint_command` and the driver's `joint_states`; publishes what is
safe as `safe_joint_command` (JointState, for our driver bridge) and `safe_joint_trajectory` (a
one-point JointTrajectory, for a ros2_control joint_trajectory_controller). Refusals and clamps go
out as SafetyEvent messages and log lines, and are counted on diagnostics. The e-stop (topic
`estop`, std_msgs/Bool true; service `set_estop`, std_srvs/SetBool) latches until released through
the service. A watchdog reports a joint state that stops arriving.

Stamps are checked against the node clock: wall time on a robot, the bag's time when a bag is replayed
with use_sim_time (the filter then refuses what it would have refused live). The watchdog runs on the
steady clock, so it still fires when no /clock arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from asyncvla_ros.control.safety import SafetyConfig, SafetyEventInfo, SafetyFilter
from asyncvla_ros.msg import SafetyEvent
from asyncvla_ros.nodes.conversions import from_time, joint_state, single_point_trajectory, to_time
from asyncvla_ros.nodes.params import ERROR, OK, WARN, declare_config, diagnostics, steady_timer
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param


@dataclass
class SafetyFilterNodeConfig:
    trajectory_time_from_start_s: float = param(0.05, "time_from_start of the published trajectory point, s", low=0.001, high=10.0)


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", SafetyConfig), ("", SafetyFilterNodeConfig))


class SafetyFilterNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("safety_filter", **kwargs)
        config = declare_config(self, SafetyConfig)
        self.trajectory_time_s = declare_config(self, SafetyFilterNodeConfig).trajectory_time_from_start_s
        self.filter = SafetyFilter(config)
        self.accepted = 0
        self.last_state_ns = 0
        self.stale_reported = False
        self.cmd_pub = self.create_publisher(JointState, "safe_joint_command", 10)
        self.traj_pub = self.create_publisher(JointTrajectory, "safe_joint_trajectory", 10)
        self.event_pub = self.create_publisher(SafetyEvent, "safety_events", 50)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self.on_state, 10)
        self.create_subscription(JointState, "joint_command", self.on_command, 10)
        self.create_subscription(Bool, "estop", self.on_estop_topic, 10)
        self.create_service(SetBool, "set_estop", self.on_estop_service)
        steady_timer(self, 0.1, self.on_watchdog)
        self.get_logger().info(f"guarding joints {list(config.joint_names)}")

    def report(self, event: SafetyEventInfo) -> None:
        msg = SafetyEvent(source_node=self.get_fully_qualified_name(), kind=event.kind, detail=event.detail,
                          refusal_count=self.filter.refused, estop_latched=self.filter.estop_latched)
        msg.header.stamp = to_time(self.now_ns())
        self.event_pub.publish(msg)
        # rclpy fixes severity and throttling per call site, hence two calls. Every refusal is logged;
        # clamps (frequent with a jittery policy) at most once a second.
        if event.refused:
            self.get_logger().warning(f"refused ({event.kind}): {event.detail}")
        else:
            self.get_logger().info(f"altered ({event.kind}): {event.detail}", throttle_duration_sec=1.0)

    def on_state(self, msg: JointState) -> None:
        problem = self.filter.update_state(msg.name, msg.position, from_time(msg.header.stamp))
        if problem:
            self.report(problem)
        else:
            self.last_state_ns = time.monotonic_ns()  # receipt time, for the watchdog
            self.stale_reported = False

    def on_command(self, msg: JointState) -> None:
        verdict = self.filter.check(msg.name, msg.position, from_time(msg.header.stamp), self.now_ns())
        for event in verdict.events:
            self.report(event)
        if verdict.accepted:
            self.publish(verdict.positions, from_time(msg.header.stamp))

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def publish(self, positions, stamp_ns: int | None = None) -> None:
        """`positions` to the driver, stamped as the command they let through (so the action node can
        tell which of its commands became what), or now when they answer no command (the e-stop's)."""
        stamp = self.now_ns() if stamp_ns is None else stamp_ns
        names = self.filter.config.joint_names
        self.cmd_pub.publish(joint_state(names, positions, stamp))
        self.traj_pub.publish(single_point_trajectory(names, positions, stamp, self.trajectory_time_s))
        self.accepted += 1

    def engage(self, reason: str) -> None:
        stop = self.filter.engage_estop(reason)
        if stop is not None:
            self.publish(stop)  # one last command: stay where the arm is
        self.report(SafetyEventInfo("estop", f"e-stop latched: {reason}", True))

    def on_estop_topic(self, msg: Bool) -> None:
        if msg.data:
            self.engage("estop topic")
        else:
            self.get_logger().warning("estop topic false ignored: release the e-stop with the set_estop service")

    def on_estop_service(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data:
            self.engage("set_estop service")
            response.message = "e-stop latched"
        else:
            was = self.filter.release_estop()
            response.message = "e-stop released" if was else "e-stop was not latched"
            self.report(SafetyEventInfo("estop", response.message, False))
        response.success = True
        return response

    def on_watchdog(self) -> None:
        age = (time.monotonic_ns() - self.last_state_ns) * 1e-9 if self.last_state_ns else float("inf")
        stale = age > self.filter.config.state_timeout_s
        if stale and not self.stale_reported:
            self.stale_reported = True
            what = "no joint state received yet" if self.last_state_ns == 0 else f"joint state stale: last one {age:.2f} s ago"
            self.report(SafetyEventInfo("stale_state", f"{what}; commands are refused", True))
        level = ERROR if self.filter.estop_latched else (WARN if stale else OK)
        message = "e-stop latched" if self.filter.estop_latched else ("joint state stale" if stale else "ok")
        values = {"accepted": self.accepted, "state_age_s": age, **{f"count_{k}": v for k, v in self.filter.counts.items()}}
        self.diag_pub.publish(diagnostics(self, self.now_ns(), "safety_filter", level, message, values))


def main(args=None) -> None:
    run_and_exit(SafetyFilterNode, args)

if __name__ == "__main__":
    main()
