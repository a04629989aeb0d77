"""ros2 launch asyncvla_ros robot.launch.py [robot:=sim|so100|kinova_gen2] [model:=DIR] [instruction:=...]
[control_rate_hz:=20.0] [colocated:=true] [params_file:=FILE] [rviz:=true] [visualizer:=false]

The node list comes from asyncvla_ros.launch_graph, which `asyncvla-ros launch` uses too, so the two
launchers start the same graph. The driver is a lifecycle node: it is configured, then activated
once configuring has ended in "inactive". As with `asyncvla-ros launch`, a failed configure or activate,
or a node process that fails, stops the whole graph (the driver's teardown disables motion).

rviz:=true (where rviz2 is installed) also starts two robot_state_publishers with the robot's URDF:
one on joint_states (the arm as measured), one in namespace ghost/ on ghost/joint_states with
frame_prefix ghost/ (the visualizer's planned pose), an identity transform from the base frame to
ghost/<base frame>, and RViz with config/asyncvla.rviz and the description's base frame as fixed frame.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handler import EventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState, StateTransition
from lifecycle_msgs.msg import Transition

from asyncvla_ros.launch_graph import ARGUMENTS, LaunchArgs, graph, params_file_for, share_dir

PACKAGE = "asyncvla_ros"


def _flag(name: str, text: str) -> bool:
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {text!r}")


def _number(name: str, text: str) -> float:
    try:
        return float(text or 0)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


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
        LogInfo(msg=f"asyncvla_ros: {reason}; stopping"), Shutdown(reason=reason)]))
    return [node, activate_when_configured, stop_when_failed, change(Transition.TRANSITION_CONFIGURE)]


def _installed(package: str) -> bool:
    try:
        get_package_prefix(package)
        return True
    except PackageNotFoundError:
        return False


def _stop_graph_on_exit(event, context):
    """on_exit of every node: a node that fails (exits non-zero) while the graph runs takes the graph down.

    Exit code 0 is left alone: on a terminal's Ctrl-C the nodes get SIGINT too and may exit before launch
    has handled its own, and a Shutdown from here would make launch send them a second SIGINT.
    """
    if context.is_shutdown or event.returncode == 0:
        return None
    reason = f"process {event.process_name} exited with code {event.returncode}"
    return [LogInfo(msg=f"asyncvla_ros: {reason}; stopping"), Shutdown(reason=reason)]


def _nodes(context, *_, **__):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    args = LaunchArgs(
        robot=value("robot"), params_file=value("params_file"), model=value("model"),
        instruction=value("instruction"), control_rate_hz=_number("control_rate_hz", value("control_rate_hz")),
        colocated=_flag("colocated", value("colocated")), rviz=_flag("rviz", value("rviz")),
        visualizer=_flag("visualizer", value("visualizer")),
    )
    params_file = str(params_file_for(args))
    actions = [LogInfo(msg=f"asyncvla_ros: {args.robot} graph with {params_file}")]
    for spec in graph(args):
        common = dict(package=PACKAGE, executable=spec.executable, output="screen", on_exit=_stop_graph_on_exit,
                      parameters=[params_file, spec.parameters] if spec.parameters else [params_file])
        if spec.lifecycle:
            actions += _lifecycle_actions(LifecycleNode(name=spec.name, namespace="", **common), spec.name)
        elif spec.rename:
            actions.append(Node(name=spec.name, **common))
        else:
            actions.append(Node(**common))
    if args.rviz and not _installed("rviz2"):
        actions.append(LogInfo(msg="asyncvla_ros: rviz:=true, but rviz2 is not installed: starting without RViz"))
    elif args.rviz:
        actions += _rviz_actions(args)
    return actions


def _rviz_actions(args: LaunchArgs) -> list:
    """RViz, and the robot models it draws: the measured arm and the ghost of the planned pose."""
    from asyncvla_ros.launch_graph import VISUALIZER_DESCRIPTION
    from asyncvla_ros.visualization.descriptions import description

    rviz_config = share_dir() / "config" / "asyncvla.rviz"
    rviz_args = ["-d", str(rviz_config)] if rviz_config.is_file() else []
    if args.robot not in VISUALIZER_DESCRIPTION:
        return [LogInfo(msg=f"asyncvla_ros: no robot description for {args.robot!r}: RViz shows no robot models"),
                Node(package="rviz2", executable="rviz2", arguments=rviz_args, output="screen")]
    desc = description(VISUALIZER_DESCRIPTION[args.robot])
    actions = []
    if _installed("robot_state_publisher") and _installed("tf2_ros"):
        urdf = desc.urdf_xml()  # mesh paths made absolute file:// URIs, which RViz loads directly
        actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                            parameters=[{"robot_description": urdf}], output="screen"))
        actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                            namespace="ghost", parameters=[{"robot_description": urdf, "frame_prefix": "ghost/"}], output="screen"))
        actions.append(Node(package="tf2_ros", executable="static_transform_publisher", name="ghost_base_tf", output="screen",
                            arguments=["--frame-id", desc.base_frame, "--child-frame-id", f"ghost/{desc.base_frame}"]))
    else:
        actions.append(LogInfo(msg="asyncvla_ros: robot_state_publisher or tf2_ros is not installed: RViz shows the chunk "
                                   "markers and paths, but no robot models"))
    actions.append(Node(package="rviz2", executable="rviz2", arguments=rviz_args + ["-f", desc.base_frame], output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=help_text)
                for name, (default, help_text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
