"""The one graph description both launchers use."""

import pytest

from asyncvla_ros.launch_graph import LaunchArgs, graph, params_file_for


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


def test_visualizer_gets_each_robots_description():
    from asyncvla_ros.visualization.descriptions import DESCRIPTIONS

    for robot in ("sim", "so100", "kinova_gen2"):
        specs = {s.name: s for s in graph(LaunchArgs(robot=robot))}
        assert specs["visualizer"].parameters["description"] in DESCRIPTIONS
    assert graph(LaunchArgs(robot="kinova_gen2"))[-1].parameters == {"description": "kinova_j2n6s300"}
    assert "visualizer" not in names(LaunchArgs(visualizer=False))


@pytest.mark.parametrize("kwargs, match", [
    (dict(robot="ur5"), "robot 'ur5' unknown"),
    (dict(model="/no/such/dir"), "is not a directory"),
    (dict(control_rate_hz=-1.0), "control_rate_hz"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LaunchArgs(**kwargs)
