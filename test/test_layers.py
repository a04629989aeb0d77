"""The package's layers, read from its import statements (function-level imports included): the core
imports no rclpy and nothing of the node layer, and no two modules import each other in a circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asyncvla_ros"
# The ROS layer: node shells, their CLIs and the launchers. Everything else is the core.
ROS_LAYER = ("asyncvla_ros.nodes", "asyncvla_ros.launcher", "asyncvla_ros.bench.graph", "asyncvla_ros.bench.soak",
             "asyncvla_ros.bench.kill", "asyncvla_ros.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the asyncvla_ros modules and top-level packages it imports."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if "msg" in path.relative_to(PACKAGE).parts[:1]:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[module_name(path)] = names
    return out


def in_ros_layer(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in ROS_LAYER)


def test_the_core_imports_no_rclpy_and_nothing_of_the_node_layer():
    for module, names in imports().items():
        if in_ros_layer(module):
            continue
        ros = sorted(n for n in names if n.split(".")[0] in ("rclpy", "launch", "launch_ros") or in_ros_layer(n))
        assert not ros, f"{module} (core) imports {ros}"


def test_no_import_circles():
    graph = {m: {n for n in names if n in imports_cache} for m, names in imports_cache.items()}
    seen, stack, circles = set(), [], []

    def visit(m):
        if m in stack:
            circles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for n in sorted(graph[m]):
            visit(n)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    # A package's __init__ importing its own submodules is not a circle of two modules.
    circles = [c for c in circles if not all(x == c[0] or x.startswith(c[0] + ".") or c[0].startswith(x + ".") for x in c)]
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


imports_cache = imports()
