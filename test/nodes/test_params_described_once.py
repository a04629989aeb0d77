"""Every node's parameters come from its config dataclasses (`CONFIGS` in its module), and every params
YAML under config/ is checked against them: each key is a parameter its node declares, each value
builds the config (type, range and choices), so a typo or a bad value fails here instead of being
ignored by ROS or failing on the robot. The declared ROS parameters themselves carry the fields'
defaults, descriptions and ranges (checked on a real node)."""

import importlib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from asyncvla_ros.launch_graph import ROBOTS, LaunchArgs, graph
from asyncvla_ros.parameters import field_default

from ..ros_support import require_ros_messages

CONFIG = Path(__file__).resolve().parents[2] / "config"
ROS_BUILTIN = {"use_sim_time", "start_type_description_service"}
# The co-located process runs the semantic and the action node, each with its own section.
PROCESS_SECTIONS = {"policy": ("semantic", "action")}
SECTION_MODULES = {"semantic": "asyncvla_ros.nodes.semantic_node", "action": "asyncvla_ros.nodes.action_node",
                   "teleop": "asyncvla_ros.nodes.teleop_node"}  # teleop:=expert instead of both


def node_modules() -> dict[str, str]:
    """params file section -> module of the node that reads it, for every node of every robot's graph."""
    out = dict(SECTION_MODULES)
    for robot in ROBOTS:
        for spec in graph(LaunchArgs(robot=robot)):
            if spec.name not in PROCESS_SECTIONS:
                out[spec.name] = spec.module
    return out


def configs(module: str):
    require_ros_messages()
    return importlib.import_module(module).CONFIGS


def known_parameters(module: str) -> dict[str, tuple[type, str]]:
    """ROS parameter name -> (config class, field name)."""
    return {prefix + f.name: (cls, f.name) for prefix, cls in configs(module) for f in fields(cls)}


YAMLS = sorted(CONFIG.glob("*.yaml"))


@pytest.mark.parametrize("path", YAMLS, ids=[p.name for p in YAMLS])
def test_every_key_of_every_params_file_is_a_declared_parameter_with_a_valid_value(path):
    doc = yaml.safe_load(path.read_text())
    modules = node_modules()
    assert set(doc) <= set(modules), f"{path.name}: sections {sorted(set(doc) - set(modules))} match no node"
    for section, body in doc.items():
        values = body["ros__parameters"]
        known = known_parameters(modules[section])
        unknown = sorted(set(values) - set(known) - ROS_BUILTIN)
        assert not unknown, f"{path.name} [{section}]: {unknown} are not parameters of that node"
        # Build each config from the file's values (the node does the same through declare_config); the
        # driver builds only its backend's, so only the prefixes of the backend the file selects.
        by_class: dict[tuple[str, type], dict] = {}
        for key, value in values.items():
            if key in ROS_BUILTIN:
                continue
            cls, name = known[key]
            prefix = key[: len(key) - len(name)]
            by_class.setdefault((prefix, cls), {})[name] = tuple(value) if isinstance(value, list) else value
        backend = values.get("backend")
        for (prefix, cls), kwargs in by_class.items():
            if prefix and section == "driver" and prefix != f"{backend}.":
                continue
            try:
                cls(**kwargs)
            except (TypeError, ValueError) as err:
                pytest.fail(f"{path.name} [{section}] {prefix}{cls.__name__}: {err}")


def test_every_field_is_described():
    for section, module in node_modules().items():
        for prefix, cls in configs(module):
            for f in fields(cls):
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name} ({section}) has no description"


def test_a_nodes_declared_parameters_are_its_config_fields(tmp_path):
    """On a real safety filter node: names, defaults, descriptions and ranges as the dataclass says; a YAML
    integer for a float is taken, a value outside the range is refused with the parameter named."""
    require_ros_messages()
    import rclpy
    from rclpy.parameter import Parameter

    from asyncvla_ros.control.safety import SafetyConfig
    from asyncvla_ros.nodes.safety_filter_node import SafetyFilterNode

    limits = dict(joint_names=["a", "b"], position_lower_rad=[-1, -1], position_upper_rad=[1.0, 1.0], max_step_rad=[0.1, 0.1])
    rclpy.init(args=[], domain_id=97)
    try:
        node = SafetyFilterNode(parameter_overrides=[Parameter(k, value=v) for k, v in limits.items()] +
                                [Parameter("command_timeout_s", value=1)])
        try:
            assert node.filter.config.command_timeout_s == 1.0 and node.filter.config.position_lower_rad == (-1.0, -1.0)
            for f in fields(SafetyConfig):
                desc = node.describe_parameter(f.name)
                assert desc.description == f.metadata["help"]
                if "range" in f.metadata:
                    assert str(f.metadata["range"][0]) in desc.additional_constraints
            assert node.get_parameter("state_timeout_s").value == field_default(next(f for f in fields(SafetyConfig)
                                                                                     if f.name == "state_timeout_s"))
        finally:
            node.destroy_node()
        with pytest.raises(ValueError, match=r"parameter state_timeout_s must be a number in \[0.001, 10.0\], got 50.0"):
            SafetyFilterNode(parameter_overrides=[Parameter(k, value=v) for k, v in limits.items()] +
                             [Parameter("state_timeout_s", value=50.0)])
        with pytest.raises(ValueError, match="parameter command_timeout_s must be a float"):
            SafetyFilterNode(parameter_overrides=[Parameter("command_timeout_s", value="soon")])
        # A string parameter set to an unquoted number (device:=1 on the command line, `device: 1` in YAML,
        # which ROS reads as an integer) is taken as its text; a float or a bool is refused.
        from dataclasses import dataclass

        from asyncvla_ros.nodes.params import declare_fields
        from asyncvla_ros.parameters import param

        @dataclass
        class Camera:
            device: str = param("0", "device index or URL")

        node = rclpy.create_node("params_probe", parameter_overrides=[Parameter("a.device", value=1), Parameter("b.device", value=1.5),
                                                                      Parameter("c.device", value=True)])
        try:
            assert declare_fields(node, Camera, "a.") == {"device": "1"}
            assert declare_fields(node, Camera, "z.") == {"device": "0"}
            for prefix in ("b.", "c."):
                with pytest.raises(ValueError, match=f"parameter {prefix}device must be a str"):
                    declare_fields(node, Camera, prefix)
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
