"""ros2 launch asyncvla_ros robot.launch.py [robot:=sim|so100|kinova_gen2] [model:=DIR] [instruction:=...]
[control_rate_hz:=20.0] [colocated:=true] [params_file:=FILE] [rviz:=true]

The node list comes from asyncvla_ros.launch_graph, which `asyncvla-ros launch` uses too, so the two
launchers start the same graph. The driver is a lifecycle node: it is configured, then activated
once it reports "inactive".
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from asyncvla_ros.launch_graph import ARGUMENTS, LaunchArgs, graph, params_file_for, share_dir

PACKAGE = "asyncvla_ros"


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _lifecycle_actions(node: LifecycleNode) -> list:
    def change(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, goal_state="inactive", entities=[change(Transition.TRANSITION_ACTIVATE)]))
    return [node, activate_when_configured, change(Transition.TRANSITION_CONFIGURE)]


def _nodes(context, *_, **__):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    args = LaunchArgs(
        robot=value("robot"), params_file=value("params_file"), model=value("model"),
        instruction=value("instruction"), control_rate_hz=float(value("control_rate_hz") or 0),
        colocated=_truthy(value("colocated")), rviz=_truthy(value("rviz")),
    )
    params_file = str(params_file_for(args))
    actions = [LogInfo(msg=f"asyncvla_ros: {args.robot} graph with {params_file}")]
    for spec in graph(args):
        common = dict(package=PACKAGE, executable=spec.executable, output="screen",
                      parameters=[params_file, spec.parameters] if spec.parameters else [params_file])
        if spec.lifecycle:
            actions += _lifecycle_actions(LifecycleNode(name=spec.name, namespace="", **common))
        elif spec.rename:
            actions.append(Node(name=spec.name, **common))
        else:
            actions.append(Node(**common))
    if args.rviz:
        rviz_config = share_dir() / "config" / "asyncvla.rviz"
        rviz_args = ["-d", str(rviz_config)] if rviz_config.is_file() else []
        actions.append(Node(package="rviz2", executable="rviz2", arguments=rviz_args, output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=help_text)
                for name, (default, help_text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
