"""Camera node: publishes sensor_msgs/Image + CameraInfo, stamped at capture.

Backends:
- `opencv`: a V4L2 device index ("0") or a stream URL, read with OpenCV (install opencv-python);
- `sim`: renders the embedded simulator's world from the driver's `sim/world_state` snapshots; the
  image is stamped with the stamp of the snapshot it shows (its capture time).
Any other ROS camera driver publishing `<camera_name>/image_raw` can replace this node.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from asyncvla_ros.imaging import camera_frame_to_rgb
from asyncvla_ros.msg import SimWorldState
from asyncvla_ros.nodes.conversions import MessageError, from_time, to_time, world_snapshot
from asyncvla_ros.nodes.images import rgb_to_image
from asyncvla_ros.nodes.params import Rejections, declare_config
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.parameters import param

BACKENDS = ("sim", "opencv")


@dataclass
class CameraNodeConfig:
    camera_name: str = param("front", "camera name; topics <camera_name>/image_raw and camera_info")
    backend: str = param("sim", "image source", choices=BACKENDS)
    device: str = param("0", "opencv: device index or stream URL")
    rate_hz: float = param(10.0, "frames per second, Hz", low=0.1, high=120.0)
    image_size_px: int = param(112, "sim: side of the square image, px", low=16, high=2048)
    render_backend: str = param("auto", "sim: headless OpenGL backend", choices=("auto", "egl", "osmesa"))
    frame_prefix: str = param("", "prefix of the image frame <camera_name>_camera (the TF prefix of a namespaced robot, e.g. r1/)")


# (parameter prefix, config dataclass): every parameter of this node, described once.
CONFIGS = (("", CameraNodeConfig),)


class CameraNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("camera", **kwargs)
        c = declare_config(self, CameraNodeConfig)
        self.camera_name, self.backend, self.device = c.camera_name, c.backend, c.device
        self.rate_hz, self.size_px, self.render_backend = c.rate_hz, c.image_size_px, c.render_backend
        self.frame_id = f"{c.frame_prefix}{self.camera_name}_camera"
        self.image_pub = self.create_publisher(Image, f"{self.camera_name}/image_raw", 2)
        self.info_pub = self.create_publisher(CameraInfo, f"{self.camera_name}/camera_info", 2)
        self.snapshot = None
        self.snapshot_stamp_ns = 0
        self.last_rendered_ns = 0
        self.lock = threading.Lock()
        self.rejections = Rejections(self)
        if self.backend == "sim":
            from asyncvla_ros.sim.world_view import WorldView

            self.view = WorldView(self.size_px, self.render_backend)
            self.create_subscription(SimWorldState, "sim/world_state", self.on_world, 2)
        else:
            import cv2  # opencv-python; only this backend needs it

            source = int(self.device) if self.device.isdigit() else self.device
            self.capture = cv2.VideoCapture(source)
            if not self.capture.isOpened():
                raise RuntimeError(f"cannot open camera {self.device!r} with OpenCV")
        self.create_timer(1.0 / self.rate_hz, self.on_timer)
        self.get_logger().info(f"camera {self.camera_name}: backend {self.backend} at {self.rate_hz} Hz")

    def on_world(self, msg: SimWorldState) -> None:
        try:
            snap = world_snapshot(msg)
            snap.check_fits(self.view.model)  # here, not at the next render: a bad pose never replaces a good one
        except (MessageError, ValueError) as err:
            self.rejections.reject(f"world state rejected, the last good one stays: {err}")
            return
        with self.lock:
            self.snapshot, self.snapshot_stamp_ns = snap, from_time(msg.header.stamp)

    def grab(self) -> tuple[np.ndarray, int] | None:
        if self.backend == "sim":
            with self.lock:
                snap, stamp = self.snapshot, self.snapshot_stamp_ns
            if snap is None or stamp == self.last_rendered_ns:
                return None  # nothing new to show
            self.last_rendered_ns = stamp
            return self.view.render(self.camera_name, snap), stamp
        ok, frame = self.capture.read()
        stamp = time.time_ns()  # OpenCV gives no capture time; read() returns right after the grab
        if not ok:
            self.get_logger().error(f"camera {self.device!r} returned no frame", throttle_duration_sec=2.0)
            return None
        try:
            return camera_frame_to_rgb(frame), stamp
        except ValueError as err:
            self.rejections.reject(f"camera {self.device!r}: {err}; frame dropped")
            return None

    def on_timer(self) -> None:
        try:
            grabbed = self.grab()
        except ValueError as err:
            self.get_logger().error(f"cannot render: {err}", throttle_duration_sec=2.0)
            return
        if grabbed is None:
            return
        rgb, stamp = grabbed
        self.image_pub.publish(rgb_to_image(rgb, stamp, self.frame_id))
        info = CameraInfo(height=rgb.shape[0], width=rgb.shape[1])
        info.header.stamp, info.header.frame_id = to_time(stamp), self.frame_id
        self.info_pub.publish(info)

    def close(self) -> None:
        if self.backend == "sim":
            self.view.close()
        else:
            self.capture.release()


def main(args=None) -> None:
    run_and_exit(CameraNode, args)

if __name__ == "__main__":
    main()
