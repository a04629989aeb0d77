"""The node graph and its launch arguments, described once, used by both `launch/robot.launch.py` (ROS
launch) and the package's own launcher (`asyncvla-ros launch`, for machines without the ROS launch
system). The launch arguments are the fields of `LaunchArgs`: `ros2 launch --show-args`, the `asyncvla-ros
launch` options and the README's table all come from them.

Plain Python: no launch, rclpy or torch imports.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from asyncvla_ros.parameters import check_fields, field_types, param

ROBOTS = ("sim", "so100", "kinova_gen2")
RESPAWN_DELAY_S = 1.0  # respawn:=true: a dead node is started again this long after it died
RESPAWN_MAX_RETRIES = 5  # ... this many times at most; its next death stops the graph
PACKAGE = "asyncvla_ros"
CAMERAS = ("front", "wrist")
# The robot description (asyncvla_ros.visualization.descriptions) the visualizer and RViz use per robot.
# The SO100 is drawn with the SO-101 description: no SO100 URDF ships in an installable package.
VISUALIZER_DESCRIPTION = {"sim": "so101", "so100": "so101", "kinova_gen2": "kinova_j2n6s300"}
NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class NodeSpec:
    name: str  # node name (params file section); also the process label
    executable: str  # installed under lib/<package>/ (ros2 run <package> <executable>)
    module: str = ""  # python module with main(), for running without the install space's launchers ("" = none)
    parameters: dict = field(default_factory=dict)  # overrides on top of the params file
    lifecycle: bool = False  # configure + activate after start
    rename: bool = True  # give the node `name` (off for a process holding several nodes)
    package: str = PACKAGE  # another package's node (RViz and the robot models it draws)
    namespace: str = ""
    arguments: tuple[str, ...] = ()  # command-line arguments before --ros-args
    params_file: bool = True  # read the graph's params file (this package's nodes)
    respawn: bool = False  # restarted when it dies (LaunchArgs.respawn), instead of stopping the graph


@dataclass
class LaunchArgs:
    robot: str = param("sim", "which arm: sim (the embedded simulated SO-101), so100 (LeRobot's SO100 follower driver) or "
                              "kinova_gen2 (the Gen2 SDK, or a running Gen2 ROS driver); selects config/<robot>.yaml", choices=ROBOTS)
    params_file: str = param("", "parameters of every node; empty = config/<robot>.yaml installed with the package")
    model: str = param("", "policy checkpoint directory, or a bare Qwen2.5-VL directory (action expert and rater then start "
                           "untrained); empty = the embedded default policy")
    instruction: str = param("", "task instruction; empty = the params file's (also settable at run time on the latched "
                                 "instruction topic)")
    control_rate_hz: float = param(0.0, "action node control rate, Hz; 0 = the params file's (20)", low=0.0, high=1000.0)
    colocated: bool = param(False, "one process for the semantic and action nodes: the semantic cache is handed over in memory")
    rviz: bool = param(False, "start RViz with config/asyncvla.rviz and the robot models it draws, where RViz is installed; "
                              "elsewhere a log line says it is not")
    visualizer: bool = param(True, "the chunk visualizer node (RViz markers, end-effector paths and ghost pose of each chunk)")
    teleop: str = param("", "a demonstrator in place of the policy (no semantic or action node): expert = the sim's scripted "
                            "expert (robot:=sim); so100_leader = LeRobot's SO100 leader arm moved by hand (robot:=so100 or sim; "
                            "the params file's teleop section); record the graph to record demonstrations",
                        choices=("", "expert", "so100_leader"))
    episodes: int = param(0, "teleop:=expert: episodes to demonstrate in one run, each on the next scene seed (the sim driver "
                             "resets the world in place and marks each start on /episode); 0 = the params file's (1)",
                          low=0, high=1_000_000)
    respawn: bool = param(False, f"restart a node process that dies, {RESPAWN_DELAY_S:g} s after it died and at most "
                                 f"{RESPAWN_MAX_RETRIES} times each, instead of stopping the graph; never the driver (a dead "
                                 "driver stops the graph: motion is not re-enabled without an operator)")
    namespace: str = param("", "put the whole graph under this ROS namespace, for several robots on one domain: its nodes, "
                               "topics and services, its params file's sections, TF frames (prefix NAMESPACE/) and the RViz view")

    def __post_init__(self) -> None:
        check_fields(self)
        self.namespace = self.namespace.strip("/")
        if self.namespace and not all(NAME_TOKEN.fullmatch(t) for t in self.namespace.split("/")):
            raise ValueError(f"namespace {self.namespace!r}: use ROS name tokens (letters, digits, _; not starting with "
                             "a digit), separated by /")
        if self.teleop == "expert" and self.robot != "sim":
            raise ValueError(f"teleop:=expert is the sim's scripted expert; robot:={self.robot} has no expert")
        if self.episodes and self.teleop != "expert":
            raise ValueError("episodes:= counts the sim expert's demonstrations; it needs teleop:=expert")
        if self.teleop == "so100_leader" and self.robot not in ("sim", "so100"):
            raise ValueError(f"teleop:=so100_leader drives an SO100's (or the sim SO-101's) joints, not robot:={self.robot}'s")
        if self.model and not Path(self.model).expanduser().is_dir():
            raise ValueError(f"model {self.model!r} is not a directory")

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> "LaunchArgs":
        """From launch-argument strings (`name:=value`), e.g. `colocated:=true`, `control_rate_hz:=10`.

        Raises:
            ValueError: an unknown argument, or a value of the wrong kind, naming it.
        """
        types = field_types(cls)
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise ValueError(f"unknown launch arguments {unknown}; valid ones are {list(types)}")
        return cls(**{name: _from_string(name, types[name], text) for name, text in values.items()})

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        """One option per field: --robot, --params-file, ..., --colocated/--no-colocated."""
        types = field_types(cls)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            kind, help_text = types[f.name], f.metadata["help"]
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            else:
                parser.add_argument(flag, type=kind, default=f.default, choices=f.metadata.get("choices"), help=help_text)

    @classmethod
    def from_options(cls, opts: argparse.Namespace) -> "LaunchArgs":
        return cls(**{f.name: getattr(opts, f.name) for f in fields(cls)})


def _from_string(name: str, kind, text: str):
    text = text.strip()
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be true or false, got {text!r}")
    if kind is float:
        try:
            return float(text or 0)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
    if kind is int:
        try:
            return int(text or 0)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    return text


def launch_string(value) -> str:
    """A default as a launch argument string: true/false, 20, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Launch argument -> (default string, description), for DeclareLaunchArgument.
ARGUMENTS = {f.name: (launch_string(f.default), f.metadata["help"]) for f in fields(LaunchArgs)}


def markdown_table() -> str:
    """The README's launch-argument table."""
    rows = ["| argument | default | meaning |", "|---|---|---|"]
    def cell(text: str) -> str:
        return text.replace("<", "&lt;").replace(">", "&gt;")

    rows += [f"| `{name}` | {f'`{default}`' if default else 'empty'} | {cell(help_text)} |" for name, (default, help_text) in ARGUMENTS.items()]
    return "\n".join(rows)


def share_dir() -> Path:
    """The package's share directory: the install space's, else the source tree's."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / PACKAGE
        if (candidate / "config").is_dir():
            return candidate
    return Path(__file__).resolve().parent.parent


def installed(package: str) -> bool:
    """Whether the ament index on AMENT_PREFIX_PATH lists `package` (as `ros2 pkg list` would)."""
    return any((Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / package).is_file()
               for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if prefix)


def params_file_for(args: LaunchArgs) -> Path:
    path = Path(args.params_file).expanduser() if args.params_file else share_dir() / "config" / f"{args.robot}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} not found (robot {args.robot!r})")
    return path


def graph_params_file(args: LaunchArgs, out_dir: Path) -> Path:
    """The params file the graph's nodes read: `params_file_for(args)`, or with a namespace a copy in
    `out_dir` whose sections are keyed by the namespaced node names (a section `driver:` only matches a
    node /driver in the root namespace; the copy's `/r1/driver:` matches /r1/driver). Sections already
    keyed by an absolute name or a wildcard (`/**`) are kept as they are."""
    source = params_file_for(args)
    if not args.namespace:
        return source
    import yaml

    sections = yaml.safe_load(source.read_text()) or {}
    keyed = {(key if str(key).startswith("/") else f"/{args.namespace}/{key}"): value for key, value in sections.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{args.namespace.replace('/', '.')}.{source.name}"
    out.write_text(f"# {source} with its sections under namespace /{args.namespace}\n" + yaml.safe_dump(keyed, sort_keys=False))
    return out


def _namespaced(args: LaunchArgs, nodes: list[NodeSpec]) -> list[NodeSpec]:
    """`nodes` under the graph's namespace (each node's own namespace inside it)."""
    if args.namespace:
        for spec in nodes:
            spec.namespace = "/".join(p for p in (args.namespace, spec.namespace) if p)
    return nodes


def frame_prefix(args: LaunchArgs) -> str:
    """The TF prefix of the graph's frames: NAMESPACE/ (empty without a namespace)."""
    return f"{args.namespace}/" if args.namespace else ""


def graph(args: LaunchArgs) -> list[NodeSpec]:
    """The nodes to start for `args`, in start order (driver first, policy last), under `args.namespace`."""
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
    framed = {"frame_prefix": frame_prefix(args)} if args.namespace else {}
    nodes += [NodeSpec(f"{cam}_camera", "camera_node", "asyncvla_ros.nodes.camera_node", dict(framed)) for cam in CAMERAS]
    nodes.append(NodeSpec("safety_filter", "safety_filter_node", "asyncvla_ros.nodes.safety_filter_node"))
    if args.teleop:
        teleop = {"source": args.teleop}
        if args.episodes:
            teleop["expert.episodes"] = int(args.episodes)
        nodes.append(NodeSpec("teleop", "teleop_node", "asyncvla_ros.nodes.teleop_node", teleop))
    elif args.colocated:
        # One process, two nodes ("semantic", "action"): each reads its own params file section.
        nodes.append(NodeSpec("policy", "policy_node", "asyncvla_ros.nodes.policy_node", {**semantic, **action}, rename=False))
    else:
        nodes.append(NodeSpec("semantic", "semantic_node", "asyncvla_ros.nodes.semantic_node", semantic))
        nodes.append(NodeSpec("action", "action_node", "asyncvla_ros.nodes.action_node", action))
    if args.visualizer and args.robot in VISUALIZER_DESCRIPTION:
        nodes.append(NodeSpec("visualizer", "visualizer_node", "asyncvla_ros.nodes.visualizer_node",
                              {"description": VISUALIZER_DESCRIPTION[args.robot], **framed}))
    for spec in nodes:
        spec.respawn = args.respawn and not spec.lifecycle
    return _namespaced(args, nodes)


def rviz_config(args: LaunchArgs, out_dir: Path) -> Path:
    """config/asyncvla.rviz, or with a namespace a copy in `out_dir` whose topics are under it and whose
    fixed frame carries its TF prefix."""
    config = share_dir() / "config" / "asyncvla.rviz"
    if not args.namespace:
        return config
    lines = []
    for line in config.read_text().splitlines():
        indent, _, value = line.partition("Value: /")
        if value and indent.strip() == "":
            line = f"{indent}Value: /{args.namespace}/{value}"
        elif line.strip().startswith("Fixed Frame: "):
            head, _, frame = line.partition("Fixed Frame: ")
            line = f"{head}Fixed Frame: {frame_prefix(args)}{frame}"
        lines.append(line)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{args.namespace.replace('/', '.')}.asyncvla.rviz"
    out.write_text("\n".join(lines) + "\n")
    return out


def rviz_nodes(args: LaunchArgs, out_dir: Path | None = None) -> tuple[list[NodeSpec], list[str]]:
    """RViz and the robot models it draws (the measured arm, and the ghost of the planned pose: a second
    robot_state_publisher on ghost/joint_states with frame prefix ghost/, tied to the base by an identity
    transform), as far as they are installed; and a note for each part that is not."""
    if not installed("rviz2"):
        return [], ["rviz:=true, but rviz2 is not installed: starting without RViz"]
    config = share_dir() / "config" / "asyncvla.rviz"
    if config.is_file() and args.namespace:
        config = rviz_config(args, out_dir or Path(os.environ.get("TMPDIR", "/tmp")))
    rviz_args = ("-d", str(config)) if config.is_file() else ()
    if args.robot not in VISUALIZER_DESCRIPTION:
        return _namespaced(args, [NodeSpec("rviz", "rviz2", package="rviz2", arguments=rviz_args, params_file=False)]), \
               [f"no robot description for {args.robot!r}: RViz shows no robot models"]
    from asyncvla_ros.visualization.descriptions import description

    desc, tf = description(VISUALIZER_DESCRIPTION[args.robot]), frame_prefix(args)
    rviz = NodeSpec("rviz", "rviz2", package="rviz2", arguments=(*rviz_args, "-f", tf + desc.base_frame), params_file=False)
    if not (installed("robot_state_publisher") and installed("tf2_ros")):
        return _namespaced(args, [rviz]), ["robot_state_publisher or tf2_ros is not installed: RViz shows the chunk markers "
                                           "and paths, but no robot models"]
    urdf = desc.urdf_xml()  # mesh paths made absolute file:// URIs, which RViz loads directly
    rsp = dict(executable="robot_state_publisher", package="robot_state_publisher", params_file=False)
    return _namespaced(args, [
        NodeSpec("robot_state_publisher", parameters={"robot_description": urdf, **({"frame_prefix": tf} if tf else {})}, **rsp),
        NodeSpec("robot_state_publisher", parameters={"robot_description": urdf, "frame_prefix": f"{tf}ghost/"}, namespace="ghost", **rsp),
        NodeSpec("ghost_base_tf", "static_transform_publisher", package="tf2_ros", params_file=False,
                 arguments=("--frame-id", tf + desc.base_frame, "--child-frame-id", f"{tf}ghost/{desc.base_frame}")),
        rviz,
    ]), []


if __name__ == "__main__":
    print(markdown_table())  # the README's table: python -m asyncvla_ros.launch_graph
