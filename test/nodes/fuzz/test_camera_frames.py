"""Fuzzed frames from an OpenCV camera (the camera node's `opencv` backend, with the capture replaced by
one that returns the generated frames), over real rclpy: the node publishes rgb8 for every 8-bit colour
or grey frame a device or stream may return (BGR, BGRA, grey with or without a channel axis) and drops
the rest (no frame, empty, 16-bit, float, other channel counts) with a counted reason, never dying."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from .support import CASES  # noqa: E402

FRAME_KINDS = ("bgr", "bgra", "grey", "grey_1", "none", "empty", "uint16", "float", "channels_2", "channels_5", "ndim_4")
GOOD = {"bgr", "bgra", "grey", "grey_1"}


class FakeCapture:
    """cv2.VideoCapture's read(), returning what the test puts in `frame`."""

    def __init__(self, source) -> None:
        self.source, self.frame = source, None

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        return True, self.frame  # ok: the device delivered something (a failed read is the node's other path)

    def release(self) -> None:
        pass


@pytest.fixture(scope="module")
def opencv_camera(graph):  # graph: rclpy is up
    cv2 = pytest.importorskip("cv2")
    from asyncvla_ros.nodes.camera_node import CameraNode

    real, cv2.VideoCapture = cv2.VideoCapture, FakeCapture
    try:
        camera = CameraNode(cli_args=["--ros-args", "-r", "__node:=fuzz_opencv_camera", "-p", "backend:=opencv", "-p", "device:=7",
                                      "-r", "front/image_raw:=fuzz/opencv_image", "-r", "front/camera_info:=fuzz/opencv_info"])
    finally:
        cv2.VideoCapture = real
    published = []
    publish = camera.image_pub.publish
    camera.image_pub.publish = lambda msg: (published.append(msg), publish(msg))
    yield camera, published
    camera.close()
    camera.destroy_node()


@st.composite
def frames(draw, kind: str):
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    channels = {"bgr": 3, "bgra": 4, "grey_1": 1, "channels_2": 2, "channels_5": 5}.get(kind)
    if kind == "none":
        return None
    if kind == "empty":
        return np.zeros(draw(st.sampled_from([(0, w, 3), (h, 0, 3), (0, 0)])), np.uint8)
    if kind == "uint16":
        return np.full((h, w), draw(st.integers(0, 65535)), np.uint16)
    if kind == "float":
        return np.full((h, w, 3), draw(st.floats(allow_nan=True)), np.float32)
    if kind == "ndim_4":
        return np.zeros((2, h, w, 3), np.uint8)
    shape = (h, w) if kind == "grey" else (h, w, channels)
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("kind", FRAME_KINDS)
@settings(max_examples=max(1, settings().max_examples // 4))
@given(data=st.data())
def test_the_opencv_camera_publishes_colour_and_grey_frames_and_drops_the_rest(opencv_camera, kind, data):
    from asyncvla_ros.nodes.images import image_to_rgb

    camera, published = opencv_camera
    frame = data.draw(frames(kind))
    CASES["camera frame from OpenCV (camera, opencv backend)"][kind] += 1
    camera.capture.frame = frame
    before, sent = camera.rejections.count, len(published)
    camera.on_timer()  # one grab, as the node's timer does it
    if kind in GOOD:
        assert camera.rejections.count == before and len(published) == sent + 1
        rgb = image_to_rgb(published[-1])
        grey = frame.reshape(frame.shape[0], frame.shape[1], -1)
        expected = np.repeat(grey, 3, axis=2) if grey.shape[2] == 1 else grey[:, :, 2::-1]
        np.testing.assert_array_equal(rgb, expected)
    else:
        assert camera.rejections.count == before + 1 and len(published) == sent
