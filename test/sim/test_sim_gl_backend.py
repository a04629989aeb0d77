"""Choosing the headless OpenGL backend."""

import pytest

from asyncvla_ros.sim import gl_backend


def test_unknown_backend_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="osmesa"):
        gl_backend.select_gl_backend("vulkan")


def test_backend_cannot_change_after_mujoco_is_imported(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "mujoco", object())
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert gl_backend.select_gl_backend("auto") == "egl"
    assert gl_backend.select_gl_backend("egl") == "egl"
    with pytest.raises(gl_backend.GLBackendError, match="MUJOCO_GL=osmesa"):
        gl_backend.select_gl_backend("osmesa")


def test_no_working_backend_says_what_to_install(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "mujoco", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(gl_backend, "_selected", None)
    monkeypatch.setattr(gl_backend, "probe_backend", lambda backend: "library not found")
    with pytest.raises(gl_backend.GLBackendError, match="libosmesa6"):
        gl_backend.select_gl_backend()


def test_first_working_backend_is_exported(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "mujoco", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)  # restored after the test
    monkeypatch.setattr(gl_backend, "_selected", None)
    monkeypatch.setattr(gl_backend, "probe_backend", lambda b: None if b == "osmesa" else "no EGL device")
    assert gl_backend.select_gl_backend() == "osmesa"
    import os

    assert os.environ["MUJOCO_GL"] == "osmesa" and os.environ["PYOPENGL_PLATFORM"] == "osmesa"
