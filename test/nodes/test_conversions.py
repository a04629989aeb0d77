"""Message conversions: semantic features inline round trip, images, joint states."""

import numpy as np
import pytest

from ..ros_support import require_ros_messages


@pytest.fixture(scope="module", autouse=True)
def _ros():
    require_ros_messages()
    pytest.importorskip("torch")


def test_semantic_features_round_trip_bit_identical_in_float32_and_bfloat16():
    import torch

    from asyncvla_ros.nodes.semantic_transport import from_message, to_message
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from rclpy.serialization import deserialize_message, serialize_message

    from asyncvla_ros.msg import SemanticFeatures

    from ..policy.conftest import INSTRUCTIONS, random_images, tiny_config

    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS).eval()
    cond = policy.encode(random_images(), INSTRUCTIONS[0], stamp_ns=1_700_000_000_123_456_789)
    for dtype in (torch.float32, torch.bfloat16):
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in cond.tensors().items()}
        source = type(cond).from_tensors(tensors, cond.stamp_ns, cond.instruction)
        wire = deserialize_message(serialize_message(to_message(source, 7, "m", 1.5, inline=True, state_stamp_ns=42)), SemanticFeatures)
        assert wire.header.stamp.sec == 1_700_000_000 and wire.header.stamp.nanosec == 123_456_789
        assert wire.state_stamp.nanosec == 42 and wire.seq == 7 and wire.num_prefix_tokens == int(cond.num_prefix_tokens[0])
        back = from_message(wire)
        for name, t in source.tensors().items():
            assert back.tensors()[name].dtype == t.dtype and torch.equal(back.tensors()[name], t), name
    meta = to_message(cond, 8, "m", 1.0, inline=False)
    assert all(len(b.data) == 0 and len(b.shape) > 0 for b in meta.tensors)
    from asyncvla_ros.nodes.conversions import MessageError

    with pytest.raises(MessageError, match="no inline payload"):
        from_message(meta)


def test_images_decode_rgb_bgr_mono_and_padded_rows():
    from sensor_msgs.msg import Image

    from asyncvla_ros.nodes.conversions import MessageError
    from asyncvla_ros.imaging import resize_rgb
    from asyncvla_ros.nodes.images import image_to_rgb, rgb_to_image

    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb, 0, "f")), rgb)
    padded = np.zeros((4, 16), np.uint8)
    padded[:, :15] = rgb[:, :, ::-1].reshape(4, 15)
    bgr = Image(height=4, width=5, encoding="bgr8", step=16, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_rgb(bgr), rgb)
    mono = Image(height=2, width=2, encoding="mono8", step=2, data=bytes([0, 50, 100, 150]))
    assert image_to_rgb(mono)[1, 1].tolist() == [150, 150, 150]
    with pytest.raises(MessageError, match="encoding '16UC1' not supported"):
        image_to_rgb(Image(height=1, width=1, encoding="16UC1", step=2, data=b"\0\0"))
    with pytest.raises(MessageError, match="bytes of data"):
        image_to_rgb(Image(height=2, width=2, encoding="rgb8", step=6, data=b"\0" * 5))
    wide = np.zeros((100, 200, 3), np.uint8)
    wide[:, 50:150] = 255  # the centre square survives the centre crop
    out = resize_rgb(wide, (56, 56))
    assert out.shape == (56, 56, 3) and out.min() == 255


def test_joint_positions_reorders_and_refuses_bad_states():
    from asyncvla_ros.nodes.conversions import MessageError, joint_positions, joint_state

    msg = joint_state(["b", "a", "extra"], [2.0, 1.0, 9.0], 5)
    np.testing.assert_array_equal(joint_positions(msg, ["a", "b"]), [1.0, 2.0])
    with pytest.raises(MessageError, match="lacks joints"):
        joint_positions(msg, ["a", "c"])
    with pytest.raises(MessageError, match="non-finite"):
        joint_positions(joint_state(["a"], [float("nan")], 5), ["a"])
    with pytest.raises(MessageError, match="names a joint twice"):  # which of the two would be the arm's?
        joint_positions(joint_state(["a", "b", "a"], [1.0, 2.0, 3.0], 5), ["a", "b"])
