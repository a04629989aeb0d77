"""Skip a data test module, with the reason, when LeRobot, MuJoCo or the SO-101 model is missing."""

import importlib.util

import pytest

from test.sim._support import skip_without_sim


def skip_without_lerobot() -> None:
    """Call at the top of a test module that records or reads datasets."""
    if importlib.util.find_spec("lerobot") is None:
        pytest.skip(
            "LeRobot is not installed (scripts/setup_env.sh installs it: requirements/nodeps.txt)",
            allow_module_level=True,
        )
    skip_without_sim()
