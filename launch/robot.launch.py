"""ros2 launch asyncvla_ros robot.launch.py [robot:=sim|so100|kinova_gen2] [model:=DIR] [instruction:=...]
[control_rate_hz:=20.0] [colocated:=true] [params_file:=FILE] [rviz:=true] [visualizer:=false] [namespace:=r1]
[teleop:=expert] [respawn:=true]

namespace:=r1 puts the whole graph under /r1 (several robots on one ROS domain): the params file is
copied with its sections keyed /r1/<node>, TF frames get the prefix r1/, and the RViz config its topics.

The node list comes from asyncvla_ros.launch_graph, which `asyncvla-ros launch` uses too, so the two
launchers start the same graph. The driver is a lifecycle node: it is configured, then activated
once configuring has ended in "inactive". As with `asyncvla-ros launch`, a failed configure or activate,
or a node process that fails, stops the whole graph; a failed node first has the driver deactivated
(motion disabled), and the driver disables motion itself when it is stopped.

rviz:=true (where rviz2 is installed) also starts two robot_state_publishers with the robot's URDF:
one on joint_states (the arm as measured), one in namespace ghost/ on ghost/joint_states with
frame_prefix ghost/ (the visualizer's planned pose), an identity transform from the base frame to
ghost/<base frame>, and RViz with config/asyncvla.rviz and the description's base frame as fixed frame.
"""

import inspect
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteLocal, LogInfo, OpaqueFunction, RegisterEventHandler, TimerAction
from launch.event_handler import EventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState, StateTransition
from lifecycle_msgs.msg import Transition

from asyncvla_ros.launch_graph import (ARGUMENTS, RESPAWN_DELAY_S, RESPAWN_MAX_RETRIES, LaunchArgs, NodeSpec, graph,
                                       graph_params_file, rviz_nodes)


class GraphFailed(RuntimeError):
    """Raised from inside launch to stop it with exit code 1: a Shutdown action would end it with 0."""


def _fail(reason: str) -> OpaqueFunction:
    """Stop launch as failed: launch logs "Caught exception in launch ...: <reason>", stops every process
    and exits 1, so a supervisor sees the failure."""
    def fail(context):
        raise GraphFailed(reason)

    return OpaqueFunction(function=fail)


# (start state, goal state) of a failed configure or activate: the "failure" and the "error" outcomes.
FAILED_STARTUP = {("configuring", "unconfigured"), ("configuring", "errorprocessing"),
                  ("activating", "inactive"), ("activating", "errorprocessing")}


def _lifecycle_actions(node: LifecycleNode, name: str) -> list:
    def change(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    def startup_failed(event) -> bool:
        return (isinstance(event, StateTransition) and event.action is node
                and (event.start_state, event.goal_state) in FAILED_STARTUP)

    # Activate only when *configuring* ends in "inactive": a later deactivate (an operator stopping
    # motion, `ros2 lifecycle set /driver deactivate`) also ends in "inactive" and must stay there.
    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
        entities=[change(Transition.TRANSITION_ACTIVATE)]))
    # As `asyncvla-ros launch` does: no graph left running without its driver.
    reason = f"lifecycle node {name!r} failed to configure or activate; see its log"
    stop_when_failed = RegisterEventHandler(EventHandler(matcher=startup_failed, entities=[
        LogInfo(msg=f"asyncvla_ros: {reason}; stopping"), _fail(reason)]))
    return [node, activate_when_configured, stop_when_failed, change(Transition.TRANSITION_CONFIGURE)]


DEACTIVATE_TIMEOUT_S = 3.0  # a driver that does not reach "inactive" this soon after a death: stop anyway


def _stop_graph_on_exit(driver: LifecycleNode | None, respawn: bool = False):
    """on_exit of every node: a node that fails (exits non-zero) while the graph runs takes the graph down,
    as under `asyncvla-ros launch`: first the driver is deactivated (motion disabled), then launch stops
    (exit code 1, naming the node), once the driver is inactive or after DEACTIVATE_TIMEOUT_S. A node
    that respawns (respawn:=true) is restarted by launch instead, up to RESPAWN_MAX_RETRIES times; the
    death after that takes the graph down.

    Exit code 0 is left alone: on a terminal's Ctrl-C the nodes get SIGINT too and may exit before launch
    has handled its own, and stopping from here would make launch send them a second SIGINT.
    """
    deaths = [0]

    def handler(event, context):
        if context.is_shutdown or event.returncode == 0:
            return None
        reason = f"process {event.process_name} died (exit code {event.returncode})"
        if respawn and deaths[0] < RESPAWN_MAX_RETRIES:
            deaths[0] += 1
            return [LogInfo(msg=f"asyncvla_ros: {reason}; restarting it in {RESPAWN_DELAY_S:g} s "
                                f"(restart {deaths[0]} of {RESPAWN_MAX_RETRIES})")]
        if respawn:
            reason += f" after {deaths[0]} restarts"
        if driver is None or event.action is driver:
            return [LogInfo(msg=f"asyncvla_ros: {reason}; stopping"), _fail(reason)]
        stop = [LogInfo(msg=f"asyncvla_ros: driver deactivated (motion disabled); stopping because {reason}"),
                _fail(f"{reason}; the driver was deactivated first")]
        return [
            LogInfo(msg=f"asyncvla_ros: {reason}; deactivating the driver before stopping"),
            RegisterEventHandler(OnStateTransition(target_lifecycle_node=driver, start_state="deactivating",
                                                   goal_state="inactive", entities=stop)),
            EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(driver),
                                        transition_id=Transition.TRANSITION_DEACTIVATE)),
            TimerAction(period=DEACTIVATE_TIMEOUT_S, actions=[
                LogInfo(msg=f"asyncvla_ros: the driver did not deactivate within {DEACTIVATE_TIMEOUT_S} s; stopping because {reason}"),
                _fail(reason)]),
        ]

    return handler


def _respawn(spec: NodeSpec) -> dict:
    """Launch's respawn options for a node that respawns; its retry limit where launch has one (Iron and
    later; on Humble `_stop_graph_on_exit` stops the graph at the same count)."""
    if not spec.respawn:
        return {}
    options = dict(respawn=True, respawn_delay=RESPAWN_DELAY_S)
    if "respawn_max_retries" in inspect.signature(ExecuteLocal.__init__).parameters:
        options["respawn_max_retries"] = RESPAWN_MAX_RETRIES
    return options


def _node(spec: NodeSpec, params_file: str, on_exit) -> Node:
    """The launch action of one NodeSpec (a lifecycle node for the driver)."""
    params = ([params_file] if spec.params_file else []) + ([spec.parameters] if spec.parameters else [])
    common = dict(package=spec.package, executable=spec.executable, output="screen", on_exit=on_exit,
                  namespace=spec.namespace, parameters=params, arguments=list(spec.arguments), **_respawn(spec))
    if spec.lifecycle:
        return LifecycleNode(name=spec.name, **common)
    return Node(name=spec.name, **common) if spec.rename else Node(**common)


def _nodes(context, *_, **__):
    args = LaunchArgs.from_strings({name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS})
    generated = Path(tempfile.mkdtemp(prefix="asyncvla_ros-launch-"))  # a namespaced params file and RViz config
    params_file = str(graph_params_file(args, generated))
    where = f" in namespace /{args.namespace}" if args.namespace else ""
    actions = [LogInfo(msg=f"asyncvla_ros: {args.robot} graph{where} with {params_file}")]
    driver = None  # the graph starts the driver first, so every later node's on_exit can deactivate it
    for spec in graph(args):
        node = _node(spec, params_file, _stop_graph_on_exit(driver, spec.respawn))
        if spec.lifecycle:
            driver = node
            actions += _lifecycle_actions(node, spec.name)
        else:
            actions.append(node)
    if args.rviz:
        specs, notes = rviz_nodes(args, generated)
        actions += [LogInfo(msg=f"asyncvla_ros: {note}") for note in notes]
        actions += [_node(spec, params_file, None) for spec in specs]
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=help_text)
                for name, (default, help_text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
