"""The conv image encoder behind the backbone interface: tokens at the image positions, a grid the
rotary index sees as such, weights saved and loaded with the policy, and inputs it refuses."""

import numpy as np
import pytest

from asyncvla_ros.policy.config import BackboneConfig, PolicyConfig
from asyncvla_ros.policy.policy import AsyncVLAPolicy

from .conftest import INSTRUCTIONS, random_images, tiny_config


def conv_config(size: int = 64) -> PolicyConfig:
    config = tiny_config()
    config.backbone = BackboneConfig(image_height_px=size, image_width_px=size, vision_encoder="conv", conv_width=8,
                                     image_position_embedding=True)
    return config


@pytest.fixture(scope="module")
def conv_policy():
    return AsyncVLAPolicy.build(conv_config(), INSTRUCTIONS, seed=0).eval()


def test_one_token_per_16_px_at_the_image_positions_with_a_grid_of_rotary_positions(conv_policy):
    bb = conv_policy.backbone
    assert bb.grid == (4, 4) and bb.tokens_per_image == 16
    inputs = bb.prepare([(random_images(size=64), INSTRUCTIONS[0], None)])
    assert inputs["pixel_values"].shape == (2, 64, 64, 3) and inputs["image_grid_thw"].tolist() == [[1, 8, 8]] * 2
    _, positions, _ = bb.embed_prefix(inputs)
    image = (inputs["input_ids"][0] == bb.image_token_id).nonzero().flatten()
    first = positions[:, 0, image[:16]]  # (3, 16): temporal, row, column of the first camera's tokens
    rows, cols = first[1] - first[1].min(), first[2] - first[2].min()
    assert rows.tolist() == [r for r in range(4) for _ in range(4)] and cols.tolist() == list(range(4)) * 4


def test_the_images_change_the_condition_and_a_saved_policy_acts_the_same(conv_policy, tmp_path):
    a = conv_policy.encode(random_images(0, size=64), INSTRUCTIONS[0])
    b = conv_policy.encode(random_images(1, size=64), INSTRUCTIONS[0])
    assert not np.allclose(a.vl_embeddings.numpy(), b.vl_embeddings.numpy())
    conv_policy.save_pretrained(tmp_path / "p")
    loaded = AsyncVLAPolicy.from_pretrained(tmp_path / "p")
    assert loaded.config.backbone.vision_encoder == "conv"
    c = loaded.encode(random_images(0, size=64), INSTRUCTIONS[0])
    state, history = np.zeros(6), np.zeros((3, 6))
    np.testing.assert_array_equal(conv_policy.act(a, state, history, seed=4).actions, loaded.act(c, state, history, seed=4).actions)


def test_a_checkpoint_without_the_encoders_weights_and_bad_sizes_are_refused(conv_policy, tmp_path):
    from safetensors.torch import load_file, save_file

    from asyncvla_ros.policy.checkpoint import CONV_PREFIX, WEIGHTS_FILE, CheckpointError

    conv_policy.save_pretrained(tmp_path / "p")
    weights = load_file(tmp_path / "p" / WEIGHTS_FILE)
    save_file({k: v for k, v in weights.items() if not k.startswith(CONV_PREFIX)}, tmp_path / "p" / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="conv image encoder"):
        AsyncVLAPolicy.from_pretrained(tmp_path / "p")
    with pytest.raises(ValueError, match="multiple of 16"):
        BackboneConfig(image_height_px=56, image_width_px=56, vision_encoder="conv")
    with pytest.raises(ValueError, match="vision_encoder must be one of"):
        BackboneConfig(vision_encoder="resnet")
    with pytest.raises(Exception, match="expected uint8 array of shape"):
        conv_policy.encode(random_images(size=56), INSTRUCTIONS[0])


def test_random_shift_pads_with_the_edge_and_crops_back():
    from asyncvla_ros.training.trainer import random_shift

    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    assert np.array_equal(random_shift(image, 2, 2, 2), image)  # the centre crop is the image
    shifted = random_shift(image, 2, 0, 0)  # content moves down-right by 2; the edge repeats
    assert shifted.shape == image.shape and np.array_equal(shifted[2:, 2:], image[:2, :2])
    assert np.array_equal(shifted[0, 0], image[0, 0]) and np.array_equal(shifted[3, 0], image[1, 0])
