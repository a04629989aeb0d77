"""The one place the simulator imports ``mujoco``: after a headless OpenGL backend is chosen.

MuJoCo fixes its OpenGL backend when it is first imported (see :mod:`asyncvla_ros.sim.gl_backend`),
so every simulator module takes ``mujoco`` from here instead of importing it directly.
"""

from asyncvla_ros.sim.gl_backend import select_gl_backend

select_gl_backend()

import mujoco  # noqa: E402  (must follow the backend choice)

__all__ = ["mujoco"]
