"""The node graph, described once, used by both `launch/robot.launch.py` (ROS launch) and the
package's own launcher (`asyncvla-ros launch`, for machines without the ROS launch system).

Plain Python: no launch, rclpy or torch imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROBOTS = ("sim", "so100", "kinova_gen2")
PACKAGE = "asyncvla_ros"
CAMERAS = ("front", "wrist")
# The robot description (asyncvla_ros.visualization.descriptions) the visualizer and RViz use per robot.
# The SO100 is drawn with the SO-101 description: no SO100 URDF ships in an installable package.
VISUALIZER_DESCRIPTION = {"sim": "so101", "so100": "so101", "kinova_gen2": "kinova_j2n6s300"}


@dataclass
class NodeSpec:
    name: str  # node name (params file section); also the process label
    executable: str  # installed under lib/asyncvla_ros/ (ros2 run asyncvla_ros <executable>)
    module: str  # python module with main(), for running without the install space's launchers
    parameters: dict = field(default_factory=dict)  # overrides on top of the params file
    lifecycle: bool = False  # configure + activate after start
    rename: bool = True  # give the node `name` (off for a process holding several nodes)


@dataclass
class LaunchArgs:
    robot: str = "sim"  # sim | so100 | kinova_gen2
    params_file: str = ""  # "" = config/<robot>.yaml of the package
    model: str = ""  # policy checkpoint or Qwen2.5-VL directory; "" = embedded default
    instruction: str = ""  # "" = the params file's
    control_rate_hz: float = 0.0  # 0 = the params file's
    colocated: bool = False  # semantic + action in one process (in-process semantic hand-over)
    rviz: bool = False
    visualizer: bool = True  # the chunk visualizer node (markers, paths, ghost pose; ~2 ms of CPU per chunk)

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise ValueError(f"robot {self.robot!r} unknown; valid robots are {list(ROBOTS)}")
        if self.control_rate_hz < 0:
            raise ValueError(f"control_rate_hz must be >= 0, got {self.control_rate_hz}")
        if self.model and not Path(self.model).expanduser().is_dir():
            raise ValueError(f"model {self.model!r} is not a directory")


# Launch argument -> (default, description), shared by both launchers.
ARGUMENTS = {
    "robot": ("sim", f"which arm: one of {list(ROBOTS)}"),
    "params_file": ("", "parameters YAML; empty = config/<robot>.yaml installed with the package"),
    "model": ("", "policy checkpoint or Qwen2.5-VL directory; empty = the embedded default policy"),
    "instruction": ("", "task instruction; empty = the params file's"),
    "control_rate_hz": ("0", "action node control rate in Hz; 0 = the params file's"),
    "colocated": ("false", "run semantic and action nodes in one process (in-process hand-over of the semantic cache)"),
    "rviz": ("false", "start RViz with config/asyncvla.rviz where RViz is installed"),
    "visualizer": ("true", "run the chunk visualizer node (RViz markers, end-effector paths, ghost pose of each chunk)"),
}


def share_dir() -> Path:
    """The package's share directory: the install space's, else the source tree's."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / PACKAGE
        if (candidate / "config").is_dir():
            return candidate
    return Path(__file__).resolve().parent.parent


def params_file_for(args: LaunchArgs) -> Path:
    path = Path(args.params_file).expanduser() if args.params_file else share_dir() / "config" / f"{args.robot}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} not found (robot {args.robot!r})")
    return path


def graph(args: LaunchArgs) -> list[NodeSpec]:
    """The nodes to start for `args`, in start order (driver first, policy last)."""
    policy_overrides = {}
    if args.model:
        policy_overrides["model_dir"] = str(Path(args.model).expanduser().resolve())
    semantic = dict(policy_overrides)
    if args.instruction:
        semantic["instruction"] = args.instruction
    action = dict(policy_overrides)
    if args.control_rate_hz:
        action["control_rate_hz"] = float(args.control_rate_hz)

    driver = {}
    if args.robot == "sim" and args.instruction:
        driver["sim.instruction"] = args.instruction  # the simulated task is the one the policy is told
    nodes = [NodeSpec("driver", "driver_node", "asyncvla_ros.nodes.driver_node", driver, lifecycle=True)]
    # Each camera node's backend (sim renderer, OpenCV device) comes from the params file.
    nodes += [NodeSpec(f"{cam}_camera", "camera_node", "asyncvla_ros.nodes.camera_node") for cam in CAMERAS]
    nodes.append(NodeSpec("safety_filter", "safety_filter_node", "asyncvla_ros.nodes.safety_filter_node"))
    if args.colocated:
        # One process, two nodes ("semantic", "action"): each reads its own params file section.
        nodes.append(NodeSpec("policy", "policy_node", "asyncvla_ros.nodes.policy_node", {**semantic, **action}, rename=False))
    else:
        nodes.append(NodeSpec("semantic", "semantic_node", "asyncvla_ros.nodes.semantic_node", semantic))
        nodes.append(NodeSpec("action", "action_node", "asyncvla_ros.nodes.action_node", action))
    if args.visualizer and args.robot in VISUALIZER_DESCRIPTION:
        nodes.append(NodeSpec("visualizer", "visualizer_node", "asyncvla_ros.nodes.visualizer_node",
                              {"description": VISUALIZER_DESCRIPTION[args.robot]}))
    return nodes
