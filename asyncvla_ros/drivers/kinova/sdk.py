"""ctypes binding of the Kinova Gen2 SDK command layer (Kinova.API.USBCommandLayerUbuntu.so or its
Ethernet variant): the functions the velocity-streaming backend needs, with the SDK's struct layouts
(KinovaTypes.h / Kinova.API.CommLayerUbuntu.h). Every SDK function returns NO_ERROR_KINOVA (1) on success.

The library is loaded when a `KinovaSdk` is built (the driver's configure), never at import.
"""

from __future__ import annotations

import ctypes
import math
from functools import lru_cache
from pathlib import Path

from asyncvla_ros.drivers.base import DriverError

NO_ERROR_KINOVA = 1
SERIAL_LENGTH = 20
MAX_KINOVA_DEVICE = 20
ANGULAR_VELOCITY = 8  # POSITION_TYPE
HAND_NOMOVEMENT = 0  # HAND_MODE
FUNCTIONS = ("InitAPI", "CloseAPI", "GetDevices", "SetActiveDevice", "StartControlAPI", "StopControlAPI",
             "SetAngularControl", "SendBasicTrajectory", "GetAngularPosition", "GetAngularVelocity", "EraseAllTrajectories")


class KinovaDevice(ctypes.Structure):
    _fields_ = [("SerialNumber", ctypes.c_char * SERIAL_LENGTH), ("Model", ctypes.c_char * SERIAL_LENGTH),
                ("VersionMajor", ctypes.c_int), ("VersionMinor", ctypes.c_int), ("VersionRelease", ctypes.c_int),
                ("DeviceType", ctypes.c_int), ("DeviceID", ctypes.c_int)]


class CartesianInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_float) for n in ("X", "Y", "Z", "ThetaX", "ThetaY", "ThetaZ")]


class FingersPosition(ctypes.Structure):
    _fields_ = [(f"Finger{i}", ctypes.c_float) for i in (1, 2, 3)]


class Limitation(ctypes.Structure):
    _fields_ = [(n, ctypes.c_float) for n in (
        "speedParameter1", "speedParameter2", "speedParameter3", "forceParameter1", "forceParameter2",
        "forceParameter3", "accelerationParameter1", "accelerationParameter2", "accelerationParameter3")]


@lru_cache(maxsize=None)
def sdk_types(actuator_fields: int):
    """(AngularInfo, AngularPosition, UserPosition, TrajectoryPoint) for an SDK whose AngularInfo has
    `actuator_fields` floats (7 in JACO2 SDK 1.5+, 6 before)."""
    angular_info = type(f"AngularInfo{actuator_fields}", (ctypes.Structure,),
                        {"_fields_": [(f"Actuator{i}", ctypes.c_float) for i in range(1, actuator_fields + 1)]})
    angular_position = type(f"AngularPosition{actuator_fields}", (ctypes.Structure,),
                            {"_fields_": [("Actuators", angular_info), ("Fingers", FingersPosition)]})
    user_position = type(f"UserPosition{actuator_fields}", (ctypes.Structure,), {"_fields_": [
        ("Type", ctypes.c_int), ("Delay", ctypes.c_float), ("CartesianPosition", CartesianInfo),
        ("Actuators", angular_info), ("HandMode", ctypes.c_int), ("Fingers", FingersPosition)]})
    trajectory_point = type(f"TrajectoryPoint{actuator_fields}", (ctypes.Structure,), {"_fields_": [
        ("Position", user_position), ("LimitationsActive", ctypes.c_int), ("SynchroType", ctypes.c_int),
        ("Limitations", Limitation)]})
    return angular_info, angular_position, user_position, trajectory_point


class KinovaSdk:
    """The loaded SDK library. Angles in and out are rad and rad/s; the SDK's own units are degrees."""

    def __init__(self, library_path: str, actuator_fields: int = 7, joints: int = 6) -> None:
        path = Path(library_path).expanduser()
        if not path.is_file():
            raise DriverError(f"Kinova Gen2 SDK library not found at {path}: install the JACO2 SDK and set "
                              "kinova_gen2.library_path to its Kinova.API.USBCommandLayerUbuntu.so (or the Ethernet variant)")
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as err:
            raise DriverError(f"cannot load the Kinova Gen2 SDK library {path}: {err}") from err
        missing = [f for f in FUNCTIONS if not hasattr(self.lib, f)]
        if missing:
            raise DriverError(f"{path} is not a Kinova Gen2 SDK command layer: it lacks {missing}")
        self.path = path
        self.joints = joints
        _, self.AngularPosition, _, self.TrajectoryPoint = sdk_types(actuator_fields)
        lib, c_int, ptr = self.lib, ctypes.c_int, ctypes.POINTER
        for name in ("InitAPI", "CloseAPI", "StartControlAPI", "StopControlAPI", "SetAngularControl", "EraseAllTrajectories"):
            getattr(lib, name).argtypes, getattr(lib, name).restype = [], c_int
        lib.GetDevices.argtypes, lib.GetDevices.restype = [ptr(KinovaDevice), ptr(c_int)], c_int
        lib.SetActiveDevice.argtypes, lib.SetActiveDevice.restype = [KinovaDevice], c_int
        lib.SendBasicTrajectory.argtypes, lib.SendBasicTrajectory.restype = [self.TrajectoryPoint], c_int
        lib.GetAngularPosition.argtypes, lib.GetAngularPosition.restype = [ptr(self.AngularPosition)], c_int
        lib.GetAngularVelocity.argtypes, lib.GetAngularVelocity.restype = [ptr(self.AngularPosition)], c_int

    def _check(self, name: str, code: int) -> None:
        if code != NO_ERROR_KINOVA:
            raise DriverError(f"Kinova SDK {name} failed with code {code}")

    def init(self) -> None:
        self._check("InitAPI", self.lib.InitAPI())

    def devices(self) -> list[KinovaDevice]:
        found = (KinovaDevice * MAX_KINOVA_DEVICE)()
        result = ctypes.c_int(0)
        count = self.lib.GetDevices(found, ctypes.byref(result))
        self._check("GetDevices", result.value)
        return [found[i] for i in range(max(0, min(count, MAX_KINOVA_DEVICE)))]

    def set_active(self, device: KinovaDevice) -> None:
        self._check("SetActiveDevice", self.lib.SetActiveDevice(device))

    def start_angular_control(self) -> None:
        self._check("StartControlAPI", self.lib.StartControlAPI())
        self._check("SetAngularControl", self.lib.SetAngularControl())

    def send_velocity(self, velocity_rad_s) -> None:
        """One ANGULAR_VELOCITY trajectory point (deg/s on the wire); fingers do not move."""
        point = self.TrajectoryPoint()  # ctypes zero-fills: every field the SDK asks to define is 0
        point.Position.Type = ANGULAR_VELOCITY
        point.Position.HandMode = HAND_NOMOVEMENT
        for i, v in enumerate(velocity_rad_s, start=1):
            setattr(point.Position.Actuators, f"Actuator{i}", math.degrees(float(v)))
        self._check("SendBasicTrajectory", self.lib.SendBasicTrajectory(point))

    def _angular(self, name: str) -> list[float]:
        out = self.AngularPosition()
        self._check(name, getattr(self.lib, name)(ctypes.byref(out)))
        return [math.radians(getattr(out.Actuators, f"Actuator{i}")) for i in range(1, self.joints + 1)]

    def position(self) -> list[float]:
        """Actuator angles, rad."""
        return self._angular("GetAngularPosition")

    def velocity(self) -> list[float]:
        """Actuator speeds, rad/s."""
        return self._angular("GetAngularVelocity")

    def erase_trajectories(self) -> None:
        self._check("EraseAllTrajectories", self.lib.EraseAllTrajectories())

    def close(self) -> None:
        try:
            self._check("StopControlAPI", self.lib.StopControlAPI())
        finally:
            self._check("CloseAPI", self.lib.CloseAPI())
