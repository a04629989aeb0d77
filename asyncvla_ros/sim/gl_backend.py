"""Choose MuJoCo's headless OpenGL backend (EGL or OSMesa) before MuJoCo is imported.

MuJoCo picks its OpenGL backend once, from ``MUJOCO_GL``, when ``mujoco`` is first imported, and
PyOpenGL picks its platform once, from ``PYOPENGL_PLATFORM``. Neither can be switched inside a running
process, so "try EGL, fall back to OSMesa" has to probe each backend in a child process and only then
set the variables here. This module must not import ``mujoco`` itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

logger = logging.getLogger(__name__)

BACKENDS = ("egl", "osmesa")
_CHOICES = ("auto",) + BACKENDS
_PROBE_TIMEOUT_S = 60.0
_INSTALL_HINT = (
    "install the system libraries (Debian/Ubuntu: apt-get install -y libegl1 libosmesa6 libgl1) "
    "or set MUJOCO_GL=egl|osmesa to a backend that works on this machine"
)
# Renders a 16x16 frame of a one-geom model: proves the backend can create a context and draw.
_PROBE_SCRIPT = """
import mujoco
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=".1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(data)
renderer.render()
renderer.close()
"""

_selected: str | None = None


class GLBackendError(RuntimeError):
    """No usable headless OpenGL backend, or one that conflicts with the backend already in use."""


def probe_backend(backend: str) -> str | None:
    """Try rendering with one backend in a child process.

    Args:
        backend: ``"egl"`` or ``"osmesa"``.

    Returns:
        None when the backend rendered a frame, else the child's last error line.
    """
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT],
            env=env,
            capture_output=True,
            check=False,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {_PROBE_TIMEOUT_S:.0f} s"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def _backend_in_use() -> str:
    """The backend the already-imported ``mujoco`` chose (from the variable it read at import)."""
    return os.environ.get("MUJOCO_GL", "").lower().strip() or "glfw"


def select_gl_backend(requested: str = "auto") -> str:
    """Make sure MuJoCo will render headless, and return the backend it uses.

    With ``"auto"`` an existing ``MUJOCO_GL`` is respected; otherwise EGL is probed, then OSMesa, and
    the first that renders is exported in ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM``. The result is
    remembered for the process, so only the first call probes.

    Args:
        requested: ``"auto"``, ``"egl"`` or ``"osmesa"``.

    Returns:
        The backend name as ``MUJOCO_GL`` holds it.

    Raises:
        ValueError: ``requested`` is not one of the choices.
        GLBackendError: no backend works, or ``mujoco`` was already imported with a different backend
            than the one requested (the backend cannot change inside a process).
    """
    global _selected
    requested = requested.lower().strip()
    if requested not in _CHOICES:
        raise ValueError(f"render backend {requested!r} is not one of {_CHOICES}")

    if "mujoco" in sys.modules:
        in_use = _backend_in_use()
        if requested != "auto" and requested != in_use:
            raise GLBackendError(
                f"render backend {requested!r} requested but mujoco was already imported with "
                f"MUJOCO_GL={in_use!r}; set MUJOCO_GL={requested} in the environment before anything "
                "imports mujoco"
            )
        _selected = in_use
        return in_use

    if requested == "auto" and _selected is not None:
        return _selected
    env_choice = os.environ.get("MUJOCO_GL", "").lower().strip()
    if requested == "auto" and env_choice:
        candidates: tuple[str, ...] = (env_choice,)
        probe = False  # the user chose; trust it and let MuJoCo report its own errors
    elif requested == "auto":
        candidates, probe = BACKENDS, True
    else:
        candidates, probe = (requested,), True

    failures = []
    for backend in candidates:
        error = probe_backend(backend) if probe else None
        if error is None:
            os.environ["MUJOCO_GL"] = backend
            if backend in BACKENDS:
                os.environ["PYOPENGL_PLATFORM"] = backend
            _selected = backend
            logger.info("MuJoCo rendering backend: %s", backend)
            return backend
        logger.warning("MuJoCo rendering backend %s does not work here: %s", backend, error)
        failures.append(f"{backend}: {error}")
    raise GLBackendError(
        "no headless OpenGL backend works for MuJoCo (" + "; ".join(failures) + "); " + _INSTALL_HINT
    )
