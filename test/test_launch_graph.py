"""The one graph description both launchers use."""

from pathlib import Path

import pytest

from asyncvla_ros.launch_graph import ARGUMENTS, LaunchArgs, graph, params_file_for


def names(args: LaunchArgs) -> list[str]:
    return [spec.name for spec in graph(args)]


def test_separate_and_colocated_graphs():
    assert names(LaunchArgs()) == ["driver", "front_camera", "wrist_camera", "safety_filter", "semantic", "action", "visualizer"]
    colocated = graph(LaunchArgs(colocated=True, visualizer=False))
    assert [s.name for s in colocated][-1] == "policy" and not colocated[-1].rename
    assert [s.name for s in graph(LaunchArgs()) if s.lifecycle] == ["driver"]


def test_arguments_reach_the_nodes(tmp_path):
    specs = {s.name: s for s in graph(LaunchArgs(model=str(tmp_path), instruction="put the red cube in the green area",
                                                  control_rate_hz=10.0))}
    assert specs["semantic"].parameters["instruction"] == "put the red cube in the green area"
    assert specs["driver"].parameters["sim.instruction"] == "put the red cube in the green area"
    assert specs["action"].parameters == {"model_dir": str(tmp_path.resolve()), "control_rate_hz": 10.0}
    assert params_file_for(LaunchArgs()).name == "sim.yaml"
    teleop = {s.name: s for s in graph(LaunchArgs(teleop="expert", episodes=5))}["teleop"]
    assert teleop.parameters == {"source": "expert", "expert.episodes": 5}


def test_visualizer_gets_each_robots_description():
    from asyncvla_ros.visualization.descriptions import DESCRIPTIONS

    for robot in ("sim", "so100", "kinova_gen2"):
        specs = {s.name: s for s in graph(LaunchArgs(robot=robot))}
        assert specs["visualizer"].parameters["description"] in DESCRIPTIONS
    assert graph(LaunchArgs(robot="kinova_gen2"))[-1].parameters == {"description": "kinova_j2n6s300"}
    assert "visualizer" not in names(LaunchArgs(visualizer=False))


@pytest.mark.parametrize("kwargs, match", [
    (dict(robot="ur5"), r"LaunchArgs.robot must be one of \['sim', 'so100', 'kinova_gen2'\], got 'ur5'"),
    (dict(model="/no/such/dir"), "is not a directory"),
    (dict(control_rate_hz=-1.0), "control_rate_hz"),
    (dict(episodes=3), "it needs teleop:=expert"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LaunchArgs(**kwargs)


def test_launch_strings_and_options_come_from_the_same_fields():
    import argparse
    from dataclasses import fields

    # What ros2 launch hands the launch file: every argument as a string, its default when not given.
    assert LaunchArgs.from_strings({name: default for name, (default, _) in ARGUMENTS.items()}) == LaunchArgs()
    args = LaunchArgs.from_strings({"robot": "so100", "colocated": "true", "control_rate_hz": "10", "visualizer": "off"})
    assert (args.robot, args.colocated, args.control_rate_hz, args.visualizer) == ("so100", True, 10.0, False)
    assert LaunchArgs.from_strings({"teleop": "expert", "episodes": "3"}).episodes == 3
    for values, match in (({"colocated": "maybe"}, "colocated must be true or false"),
                          ({"control_rate_hz": "fast"}, "control_rate_hz must be a number"),
                          ({"episodes": "2.5"}, "episodes must be a whole number"),
                          ({"namespce": "a"}, r"unknown launch arguments \['namespce'\]")):
        with pytest.raises(ValueError, match=match):
            LaunchArgs.from_strings(values)
    parser = argparse.ArgumentParser()
    LaunchArgs.add_options(parser)
    flags = {o for a in parser._actions for o in a.option_strings}
    for f in fields(LaunchArgs):  # every launch argument is an option of `asyncvla-ros launch`, rviz included
        assert "--" + f.name.replace("_", "-") in flags
    opts = parser.parse_args(["--rviz", "--no-visualizer", "--robot", "kinova_gen2", "--control-rate-hz", "15"])
    assert LaunchArgs.from_options(opts) == LaunchArgs(robot="kinova_gen2", control_rate_hz=15.0, rviz=True, visualizer=False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--robot", "ur5"])


def test_the_readme_table_is_the_launch_arguments_description():
    from asyncvla_ros.launch_graph import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table() in readme, "README's launch-argument table differs: paste `python -m asyncvla_ros.launch_graph`"


def test_rviz_and_its_robot_models_start_where_installed(tmp_path, monkeypatch):
    """Both launchers get RViz from `rviz_nodes`; `asyncvla-ros launch` runs them from the install space
    (a fake prefix here, with the ament index markers and executables ROS packages install)."""
    import yaml

    from asyncvla_ros.launch_graph import rviz_nodes
    from asyncvla_ros.launcher import node_command

    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert rviz_nodes(LaunchArgs(rviz=True)) == ([], ["rviz:=true, but rviz2 is not installed: starting without RViz"])
    for package, exe in (("rviz2", "rviz2"), ("robot_state_publisher", "robot_state_publisher"), ("tf2_ros", "static_transform_publisher")):
        (tmp_path / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True, exist_ok=True)
        (tmp_path / "share" / "ament_index" / "resource_index" / "packages" / package).touch()
        (tmp_path / "lib" / package).mkdir(parents=True)
        (tmp_path / "lib" / package / exe).write_text("#!/bin/sh\n")
        (tmp_path / "lib" / package / exe).chmod(0o755)
    specs, notes = rviz_nodes(LaunchArgs(rviz=True))
    assert not notes and [(s.package, s.namespace) for s in specs] == [
        ("robot_state_publisher", ""), ("robot_state_publisher", "ghost"), ("tf2_ros", ""), ("rviz2", "")]
    ghost = node_command(specs[1], tmp_path / "unused.yaml", tmp_path / "ghost.yaml")
    assert ghost[0] == str(tmp_path / "lib" / "robot_state_publisher" / "robot_state_publisher")
    assert "--params-file" in ghost and str(tmp_path / "unused.yaml") not in ghost and "__ns:=/ghost" in ghost
    params = yaml.safe_load((tmp_path / "ghost.yaml").read_text())["/**"]["ros__parameters"]
    assert params["frame_prefix"] == "ghost/" and params["robot_description"].lstrip().startswith("<")
    rviz = node_command(specs[3], tmp_path / "unused.yaml")
    assert rviz[1:5] == ["-d", str(Path(rviz[2])), "-f", "base_link"] and rviz[2].endswith("asyncvla.rviz")


def test_the_launchers_live_line_marks_a_silent_nodes_figures_as_stale():
    from asyncvla_ros.launcher import STALE_AFTER_S, live_line

    status = {"action": ("acting", {"rate_hz": "19.9", "plan_ms_p50": "30", "semantic_age_s": "0.2", "chunks": "40"}, 100.0),
              "semantic": ("encoding", {"refresh_hz": "5.000", "encode_ms_p50": "6.9"}, 100.0),
              "safety_filter": ("ok", {}, 100.0)}
    fresh = live_line(status, 100.0 + STALE_AFTER_S)
    assert "silent" not in fresh and "refresh 5.000 Hz" in fresh and "| chunks 40 |" in fresh
    status["semantic"] = (*status["semantic"][:2], 85.0)  # the semantic node died 15 s before
    line = live_line(status, 100.0)
    assert "encode 6.9 ms [semantic silent 15 s]" in line and line.count("silent") == 1
    assert live_line({}, 0.0).startswith("control - Hz")  # nothing heard yet: no figures, nothing marked


def test_a_launcher_step_that_never_returns_is_cut_off_with_its_stack_printed(capfd):
    import threading

    from asyncvla_ros.launcher import StepTimeout, within

    assert within(1.0, "add", lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(KeyError, match="gone"):  # its own error, raised in the caller's thread
        within(1.0, "fail", lambda: {}["gone"])
    with pytest.raises(StepTimeout, match="closing did not return within 0.2 s"):
        within(0.2, "closing", threading.Event().wait)
    assert 'File "' in capfd.readouterr().err  # where every thread was


def test_a_namespace_puts_every_node_its_params_and_its_frames_under_it(tmp_path):
    import yaml

    from asyncvla_ros.launch_graph import frame_prefix, graph_params_file, rviz_config

    args = LaunchArgs(namespace="/lab/r1/")
    assert args.namespace == "lab/r1" and frame_prefix(args) == "lab/r1/"
    specs = graph(args)
    assert {s.namespace for s in specs} == {"lab/r1"}
    by_name = {s.name: s for s in specs}
    assert by_name["front_camera"].parameters["frame_prefix"] == "lab/r1/"
    assert by_name["visualizer"].parameters["frame_prefix"] == "lab/r1/"
    params = graph_params_file(args, tmp_path)
    source = yaml.safe_load(params_file_for(args).read_text())
    keyed = yaml.safe_load(params.read_text())
    assert set(keyed) == {f"/lab/r1/{key}" for key in source} and keyed["/lab/r1/driver"] == source["driver"]
    assert graph_params_file(LaunchArgs(), tmp_path) == params_file_for(LaunchArgs())  # no namespace: the file itself
    assert all(not s.namespace for s in graph(LaunchArgs()))
    view = rviz_config(args, tmp_path).read_text()
    assert "Value: /lab/r1/chunk_markers" in view and "Fixed Frame: lab/r1/base_link" in view and "Value: /chunk" not in view
    for bad in ("1robot", "r 1", "r-1", "r1//x"):
        with pytest.raises(ValueError, match="namespace"):
            LaunchArgs(namespace=bad)
