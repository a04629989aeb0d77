"""The embedded simulated arm: an SO-101 in MuJoCo on a table with a cube and coloured target areas.

No torch and no rclpy. The names below are loaded on first use, so ``asyncvla_ros.sim.config_sim_arm``
and ``asyncvla_ros.sim.task`` can be imported (to validate parameters) without MuJoCo, and so the
headless OpenGL backend is chosen (:mod:`asyncvla_ros.sim.gl_backend`) before MuJoCo is imported.

Typical use::

    from asyncvla_ros.sim import SimArm, SimArmConfig, ScriptedExpert
    arm = SimArm(SimArmConfig(image_size_px=224))
    obs = arm.reset(seed=0)
    expert = ScriptedExpert(arm)
    for _ in range(300):  # 15 s at 20 Hz; the expert needs about 5 s
        obs = arm.step(expert.act())
        if expert.done and arm.is_success():
            break
"""

import importlib

_EXPORTS = {
    "SimArmConfig": "asyncvla_ros.sim.config_sim_arm",
    "SimArm": "asyncvla_ros.sim.sim_arm",
    "SimObservation": "asyncvla_ros.sim.sim_arm",
    "JointTargetError": "asyncvla_ros.sim.sim_arm",
    "ScriptedExpert": "asyncvla_ros.sim.expert",
    "ExpertConfig": "asyncvla_ros.sim.expert",
    "AssetsNotFoundError": "asyncvla_ros.sim.assets",
    "GLBackendError": "asyncvla_ros.sim.gl_backend",
    "select_gl_backend": "asyncvla_ros.sim.gl_backend",
    "INSTRUCTIONS": "asyncvla_ros.sim.task",
    "JOINT_NAMES": "asyncvla_ros.sim.task",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
