"""The stand-in Gen2 SDK library (fake_kinova_gen2.c) compiled from source, and its test hooks."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SOURCE = Path(__file__).with_name("fake_kinova_gen2.c")


def build_fake_sdk(out_dir: Path, actuators: int = 7) -> Path:
    """gcc the fake SDK into out_dir; skip the test when no C compiler is installed."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("needs gcc to build the fake Kinova Gen2 SDK library")
    lib = out_dir / "Kinova.API.USBCommandLayerUbuntu.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", f"-DACTUATORS={actuators}", "-o", str(lib),
                    str(SOURCE), "-lm", "-lpthread"], check=True, capture_output=True, text=True)
    return lib


class FakeArm:
    """The fake library's test hooks (the same loaded instance the backend drives through ctypes)."""

    def __init__(self, lib_path: Path, actuators: int = 7) -> None:
        self.lib = ctypes.CDLL(str(lib_path))
        self.n = actuators
        self.lib.FakeCount.restype = ctypes.c_long
        self.lib.FakeCount.argtypes = [ctypes.c_int]

    def reset(self, start_deg) -> None:
        self.lib.FakeReset()
        values = list(start_deg) + [0.0] * (self.n - len(start_deg))
        self.lib.FakeSetPositionDeg((ctypes.c_double * self.n)(*values))

    def state(self):
        """(positions deg, velocities deg/s, max |velocity| ever commanded deg/s), each (actuators,)."""
        arrays = [(ctypes.c_double * self.n)() for _ in range(3)]
        self.lib.FakeGetState(*arrays)
        return tuple(np.array(a[:]) for a in arrays)

    @property
    def sends(self) -> int:
        return self.lib.FakeCount(0)

    @property
    def erases(self) -> int:
        return self.lib.FakeCount(1)

    def break_link(self, on: bool = True) -> None:
        self.lib.FakeBreakLink(1 if on else 0)
