"""Shared fixtures for the simulator tests: one arm per module, built once (model compile ~0.2 s)."""

import pytest


@pytest.fixture(scope="module")
def physics_arm():
    """A camera-less arm: physics and task logic only."""
    from asyncvla_ros.sim import SimArm, SimArmConfig

    arm = SimArm(SimArmConfig(cameras=()))
    yield arm
    arm.close()


@pytest.fixture(scope="module")
def camera_arm():
    """An arm with both cameras at the default 224 px; skips when no headless OpenGL works."""
    from asyncvla_ros.sim import GLBackendError, SimArm, SimArmConfig

    try:
        arm = SimArm(SimArmConfig())
    except GLBackendError as exc:
        pytest.skip(f"no headless OpenGL backend: {exc}")
    yield arm
    arm.close()
