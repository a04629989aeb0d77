"""Driver bridge: a lifecycle node between the safety filter and a robot backend.

configure connects the backend, activate enables motion, deactivate stops it, cleanup disconnects.
Joint states (rad, capture-stamped) are published from configure on, so an inactive arm can be
watched; commands are applied only while active. A failing backend is reported on diagnostics and
the node deactivates itself rather than keep writing. `estop` (std_msgs/Bool, true) stops the arm
where it is until the driver is deactivated and activated again.

The sim backend also takes `sim/reset_episode` (std_msgs/UInt32, the new scene's seed): the world
restarts in place with that scene, as a person resetting it between demonstrations, and a message on
`episode` (std_msgs/String: seed and instruction) marks the start in a recording, for
`bag-to-dataset --split-topic /episode`.

Backend parameters are `<backend>.<field>` for each field of the backend's config dataclass
(asyncvla_ros.drivers.config_class, `sim.` for the simulated arm), declared with the field's
description and range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String, UInt32

from asyncvla_ros.drivers import BACKENDS, DriverError, config_class, make_backend
from asyncvla_ros.msg import SimWorldState
from asyncvla_ros.nodes.conversions import MessageError, joint_positions, joint_state, to_time
from asyncvla_ros.nodes.params import ERROR, OK, WARN, Rejections, declare_config, declare_fields, diagnostics
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param


@dataclass
class DriverNodeConfig:
    backend: str = param("sim", "robot backend", choices=BACKENDS)


def _backend_configs() -> tuple:
    return tuple((f"{name}.", config_class(name)) for name in BACKENDS)


# (parameter prefix, config dataclass): every parameter this node may declare, described once (it
# declares those of its own backend only).
CONFIGS = (("", DriverNodeConfig), *_backend_configs())


class DriverNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("driver", **kwargs)
        self.backend_name = declare_config(self, DriverNodeConfig).backend
        # Declared now (type and range checked at start); the backend's config, with its own checks across
        # fields (limits, units), is built at configure, where a refusal fails the transition.
        self.backend_params = declare_fields(self, config_class(self.backend_name), f"{self.backend_name}.")
        self.sim_episode_seed = self.backend_params.get("episode_seed", 0)
        self.backend = None
        self.link = None  # kinova_gen2_ros: the running driver's topics
        self.timer = None
        self.active = False
        self.counts = {"commands": 0, "applied": 0, "rejected": 0, "read_errors": 0}
        self.last_error = ""
        self.rejections = Rejections(self)
        self.state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.world_pub = self.create_publisher(SimWorldState, "sim/world_state", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.create_subscription(JointState, "safe_joint_command", self.on_command, 10)
        self.create_subscription(Bool, "estop", self.on_estop, 10)
        if self.backend_name == "sim":
            self.episode_pub = self.create_publisher(String, "episode", 10)
            self.create_subscription(UInt32, "sim/reset_episode", self.on_reset_episode, 10)

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.backend = make_backend(self.backend_name, self.backend_params)
            if self.backend_name == "kinova_gen2_ros":
                from asyncvla_ros.nodes.kinova_link import KinovaTopicLink

                self.link = KinovaTopicLink(self, self.backend)
            self.backend.connect()
        except (DriverError, ValueError, OSError) as err:
            self.get_logger().error(f"configure failed: {err}")
            self.drop_link()
            self.backend = None
            return TransitionCallbackReturn.FAILURE
        self.timer = self.create_timer(self.backend.period_s, self.on_timer)
        self.get_logger().info(f"backend {self.backend_name} connected; joints {list(self.backend.joint_names)}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self.backend.enable()
        except DriverError as err:
            self.get_logger().error(f"activate failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self.active = True
        self.get_logger().info("motion enabled")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        if self.backend is not None:
            self.backend.disable()
        self.get_logger().info("motion disabled")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Disable motion if it is enabled, stop the timer and disconnect the backend (also on shutdown, and
        when the process is interrupted: an arm is never left enabled by a driver that exits)."""
        if self.active and self.backend is not None:
            self.active = False
            try:
                self.backend.disable()
                self.get_logger().info("motion disabled (driver shutting down)")
            except DriverError as err:
                self.get_logger().error(f"shutting down: disabling motion failed: {err}")
        self.active = False
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        if self.backend is not None:
            self.backend.disconnect()
            self.backend = None
        self.drop_link()

    def drop_link(self) -> None:
        if self.link is not None:
            self.link.destroy()
            self.link = None

    # -- work --------------------------------------------------------------------------------------

    def on_timer(self) -> None:
        now = time.time_ns()
        try:
            self.backend.update(now)
            reading = self.backend.read()
        except DriverError as err:
            self.counts["read_errors"] += 1
            self.last_error = str(err)
            self.get_logger().error(f"backend failed: {err}; motion stopped", throttle_duration_sec=1.0)
            if self.active:  # once: a backend that keeps failing is not asked to stop again every tick
                self.active = False
                # stop(), not disable(): a backend whose link still answers holds the arm where it is
                # (the SO100 keeps torque on instead of letting the arm drop); a lost link writes nothing.
                self.backend.stop()
            self.diag_pub.publish(diagnostics(self, now, "driver", ERROR, self.last_error, self.figures()))
            return
        self.state_pub.publish(joint_state(self.backend.joint_names, reading.positions_rad, reading.stamp_ns, reading.velocities_rad_s))
        world = self.backend.world_snapshot() if hasattr(self.backend, "world_snapshot") else None
        if world is not None:
            snap, instruction = world
            msg = SimWorldState(sim_time_s=snap.time_s, qpos=snap.qpos.tolist(), mocap_pos=snap.mocap_pos.ravel().tolist(),
                                mocap_quat=snap.mocap_quat.ravel().tolist(), episode_seed=self.sim_episode_seed, instruction=instruction)
            msg.header.stamp = to_time(reading.stamp_ns)
            self.world_pub.publish(msg)
        level = OK if self.active else WARN
        message = "active" if self.active else "inactive: commands are ignored"
        self.diag_pub.publish(diagnostics(self, now, "driver", level, message, self.figures()))

    def figures(self) -> dict:
        extra = self.backend.figures() if self.backend is not None and hasattr(self.backend, "figures") else {}
        return {"backend": self.backend_name, **self.counts, **extra}

    def on_estop(self, msg: Bool) -> None:
        if not msg.data or self.backend is None:
            return
        self.active = False
        try:
            self.backend.stop()
        except DriverError as err:
            self.get_logger().error(f"e-stop: stopping the backend failed: {err}")
        self.get_logger().error("e-stop: motion stopped; deactivate and activate the driver to move again")

    def on_reset_episode(self, msg: UInt32) -> None:
        if self.backend is None:
            self.rejections.reject("episode reset ignored: driver not configured")
            return
        try:
            instruction = self.backend.reset_episode(msg.data)
        except DriverError as err:
            self.rejections.reject(f"episode reset refused: {err}")
            return
        self.sim_episode_seed = int(msg.data)
        self.episode_pub.publish(String(data=f"seed {msg.data}: {instruction}"))
        self.get_logger().info(f"sim episode reset: seed {msg.data}, {instruction!r}")

    def on_command(self, msg: JointState) -> None:
        self.counts["commands"] += 1
        if not self.active or self.backend is None:
            self.counts["rejected"] += 1
            self.rejections.reject("command ignored: driver not active", expected=True)  # deactivated on purpose
            return
        try:
            targets = joint_positions(msg, self.backend.joint_names)
            self.backend.command(targets)
        except (MessageError, DriverError) as err:
            self.counts["rejected"] += 1
            self.rejections.reject(f"command rejected: {err}")
            return
        self.counts["applied"] += 1


def main(args=None) -> None:
    run_and_exit(DriverNode, args)

if __name__ == "__main__":
    main()
