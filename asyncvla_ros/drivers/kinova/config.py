"""Configuration of the Kinova Gen2 backends. Every field maps to the ROS parameter `<backend>.<field>`.

The defaults describe a j2n6s300 (6-DOF JACO2, 3 fingers; fingers are not driven). Joint angles are the
actuator angles the arm reports (GetAngularPosition, degrees) in rad. The speed limits are the
driver-side limits of the arm's standard configuration (J1-J3 36 deg/s, J4-J6 48 deg/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from asyncvla_ros.drivers.hardware import check_limits_config, per_joint

J2N6S300_JOINTS = tuple(f"j2n6s300_joint_{i}" for i in range(1, 7))
J2N6S300_CONTINUOUS = tuple(J2N6S300_JOINTS[i] for i in (0, 3, 4, 5))  # J1, J4-J6 have no end stops
VELOCITY_TYPES = ("std_msgs/msg/Float64MultiArray", "kinova_msgs/msg/JointVelocity")


@dataclass
class KinovaTrackingConfig:
    joint_names: tuple[str, ...] = field(default=J2N6S300_JOINTS, metadata={"help": "arm joint names, actuator order"})
    position_lower: tuple[float, ...] = field(default=(-6.28, 0.83, 0.34, -6.28, -6.28, -6.28), metadata={"help": "per joint lower limit, rad (actuator angle); commands outside are refused whole"})
    position_upper: tuple[float, ...] = field(default=(6.28, 5.45, 5.94, 6.28, 6.28, 6.28), metadata={"help": "per joint upper limit, rad (actuator angle)"})
    speed_limit_rad_s: tuple[float, ...] = field(default=(0.628, 0.628, 0.628, 0.838, 0.838, 0.838), metadata={"help": "per joint largest commanded speed, rad/s (never exceeded)"})
    accel_limit_rad_s2: float = field(default=2.0, metadata={"help": "largest change of commanded speed, rad/s^2 (also sets the braking distance)", "range": (0.1, 50.0)})
    position_gain_per_s: float = field(default=4.0, metadata={"help": "tracking gain: commanded speed per rad of position error, 1/s", "range": (0.1, 50.0)})
    position_tolerance_rad: float = field(default=0.002, metadata={"help": "position error under which a joint is commanded zero speed, rad", "range": (0.0, 0.1)})
    loop_rate_hz: float = field(default=100.0, metadata={"help": "velocity stream rate, Hz (the Gen2 controller loops every 10 ms)", "range": (10.0, 500.0)})
    state_rate_hz: float = field(default=50.0, metadata={"help": "joint_states published per second, Hz", "range": (1.0, 500.0)})
    max_consecutive_failures: int = field(default=5, metadata={"help": "failed arm calls in a row after which the link counts as lost (streaming stops)", "range": (1, 1000)})
    stale_after_s: float = field(default=0.2, metadata={"help": "read() fails when the last good joint reading is older than this, s", "range": (0.01, 10.0)})
    continuous_joints: tuple[str, ...] = field(default=J2N6S300_CONTINUOUS, metadata={"help": "joints without end stops, whose reported angle may wrap (some drivers report [0, 2pi) or [-pi, pi)): a reading more than pi from the last is unwrapped by whole turns, so crossing the wrap point never looks like a full turn to the tracking loop"})

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.joint_names = tuple(str(j) for j in self.joint_names)
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n or not all(self.joint_names):
            raise ValueError(f"{owner}.joint_names must be unique non-empty names, got {self.joint_names!r}")
        self.position_lower = per_joint(owner, "position_lower", self.position_lower, n)
        self.position_upper = per_joint(owner, "position_upper", self.position_upper, n)
        check_limits_config(owner, self.joint_names, self.position_lower, self.position_upper)
        self.speed_limit_rad_s = per_joint(owner, "speed_limit_rad_s", self.speed_limit_rad_s, n, positive=True)
        for name in ("accel_limit_rad_s2", "position_gain_per_s", "loop_rate_hz", "state_rate_hz", "stale_after_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{owner}.{name} must be a finite number > 0, got {value!r}")
        if not 0.0 <= self.position_tolerance_rad <= 0.1:
            raise ValueError(f"{owner}.position_tolerance_rad must be in [0, 0.1] rad, got {self.position_tolerance_rad!r}")
        if not 10.0 <= self.loop_rate_hz <= 500.0:
            raise ValueError(f"{owner}.loop_rate_hz must be in [10, 500] Hz, got {self.loop_rate_hz!r}")
        self.continuous_joints = tuple(str(j) for j in self.continuous_joints)
        unknown = [j for j in self.continuous_joints if j not in self.joint_names]
        if unknown or len(set(self.continuous_joints)) != len(self.continuous_joints):
            raise ValueError(f"{owner}.continuous_joints must be distinct names from joint_names {list(self.joint_names)}, "
                             f"got {list(self.continuous_joints)}")
        if not 1 <= self.max_consecutive_failures <= 1000:
            raise ValueError(f"{owner}.max_consecutive_failures must be in [1, 1000], got {self.max_consecutive_failures!r}")


@dataclass
class KinovaSdkConfig(KinovaTrackingConfig):
    library_path: str = field(default="/opt/kinova/JACO2SDK/API/Kinova.API.USBCommandLayerUbuntu.so", metadata={"help": "Gen2 SDK command-layer library (USB or Ethernet variant), loaded with ctypes at configure"})
    device_serial: str = field(default="", metadata={"help": "serial number of the arm to drive; empty = the only arm found"})
    sdk_actuator_fields: int = field(default=7, metadata={"help": "Actuator fields in the SDK's AngularInfo struct: 7 in JACO2 SDK 1.5+, 6 in older SDKs", "range": (6, 7)})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.library_path:
            raise ValueError("KinovaSdkConfig.library_path must name the Gen2 SDK library (e.g. Kinova.API.USBCommandLayerUbuntu.so)")
        if self.sdk_actuator_fields not in (6, 7):
            raise ValueError(f"KinovaSdkConfig.sdk_actuator_fields must be 6 or 7, got {self.sdk_actuator_fields!r}")
        if len(self.joint_names) > self.sdk_actuator_fields:
            raise ValueError(f"KinovaSdkConfig: {len(self.joint_names)} joints but the SDK struct has {self.sdk_actuator_fields} actuators")


@dataclass
class KinovaRosConfig(KinovaTrackingConfig):
    velocity_topic: str = field(default="/j2n6s300_driver/in/joint_velocity", metadata={"help": "the running driver's joint velocity command topic"})
    velocity_type: str = field(default="kinova_msgs/msg/JointVelocity", metadata={"help": f"message type of velocity_topic, one of {list(VELOCITY_TYPES)} (kinova_msgs: deg/s in joint1..7; Float64MultiArray: rad/s, ros2_control velocity controllers)"})
    joint_state_topic: str = field(default="/j2n6s300_driver/out/joint_state", metadata={"help": "the running driver's sensor_msgs/JointState topic (rad)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.velocity_type not in VELOCITY_TYPES:
            raise ValueError(f"KinovaRosConfig.velocity_type {self.velocity_type!r} unknown; valid types are {list(VELOCITY_TYPES)}")
        if not self.velocity_topic or not self.joint_state_topic:
            raise ValueError("KinovaRosConfig.velocity_topic and joint_state_topic must not be empty")
