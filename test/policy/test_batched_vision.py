"""The batched vision tower against transformers' own, on towers with one window per image, several equal
windows, and edge windows smaller than the rest: the same image tokens, the same gradients, and the same
semantic condition out of the backbone."""

import copy
from functools import cache

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the policy core needs torch (pip install .[policy])")

from transformers import Qwen2_5_VLConfig  # noqa: E402
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402

from asyncvla_ros.policy import backbone as backbone_module  # noqa: E402
from asyncvla_ros.policy.backbone import VLBackbone  # noqa: E402
from asyncvla_ros.policy.batched_vision import batched_image_features, shared_grid, window_layout  # noqa: E402
from asyncvla_ros.policy.config import BackboneConfig, tiny_vlm_config  # noqa: E402
from asyncvla_ros.policy.tokenizer import build_word_tokenizer  # noqa: E402

from .conftest import INSTRUCTIONS  # noqa: E402

# name -> (image height px, width px, vision depth, window_size px, full-attention blocks)
TOWERS = {
    "one_window": (56, 56, 1, 112, [0]),  # the tiny default: its 2x2 merged grid fits one window
    "equal_windows": (112, 168, 3, 56, [1]),  # merged 4x6 in windows of 2x2: 2x3 equal windows
    "uneven_windows": (84, 112, 3, 56, [1]),  # merged 3x4: the bottom row of windows is half height
}


def vlm_kwargs(name: str) -> dict:
    _, _, depth, window, full = TOWERS[name]
    kwargs = tiny_vlm_config(vision_depth=depth)
    kwargs["vision_config"].update(window_size=window, fullatt_block_indexes=full)
    return kwargs


def randomise_vision(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights large enough that attention is far from uniform: with transformers' small initial weights
    every token attends almost equally to all, which would hide a wrong window or position order."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.visual.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@cache
def vision_model(name: str) -> Qwen2_5_VLModel:
    model = Qwen2_5_VLModel(Qwen2_5_VLConfig(**vlm_kwargs(name))).eval()
    randomise_vision(model)
    return model


def pixels(name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = TOWERS[name][:2]
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]
    out = Qwen2VLImageProcessorPil()(images=images, return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, height // 14, width // 14]] * n  # the processor kept the size
    return out["pixel_values"], out["image_grid_thw"]


def hf_features(model: Qwen2_5_VLModel, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    return torch.cat(model.get_image_features(pixel_values, grid_thw, return_dict=True).pooler_output)


def batched_features(model: Qwen2_5_VLModel, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    return batched_image_features(model.visual, pixel_values, shared_grid(grid_thw), len(grid_thw))


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("name", list(TOWERS))
def test_the_batched_tower_gives_transformers_image_tokens(name, n):
    model = vision_model(name)
    pixel_values, grid_thw = pixels(name, n, seed=n)
    with torch.no_grad():
        want = hf_features(model, pixel_values, grid_thw)
        got = batched_features(model, pixel_values, grid_thw)
    assert got.shape == want.shape == (n * int(grid_thw[0].prod()) // 4, model.config.text_config.hidden_size)
    assert (got - want).abs().max().item() <= 1e-5


def test_the_windows_partition_the_grid_and_change_the_tokens():
    equal = window_layout(8, 12, 2, 2, torch.device("cpu"))
    assert equal.window_tokens == 16  # 2x2 merged tokens of 2x2 patches; 96 patches = 6 windows
    uneven = window_layout(6, 8, 2, 2, torch.device("cpu"))
    assert uneven.window_tokens is None and sorted(set(uneven.same_window.sum(1).tolist())) == [8, 16]
    # With every block on full attention the tokens differ, so the window blocks above were tested.
    model = vision_model("equal_windows")
    pixel_values, grid_thw = pixels("equal_windows", 2)
    with torch.no_grad():
        windowed = hf_features(model, pixel_values, grid_thw)
        model.visual.fullatt_block_indexes = [0, 1, 2]
        try:
            full = batched_features(model, pixel_values, grid_thw)
        finally:
            model.visual.fullatt_block_indexes = TOWERS["equal_windows"][4]
    assert (windowed - full).abs().max().item() > 1e-2
    assert shared_grid(torch.tensor([[1, 4, 4], [1, 4, 6]])) is None
    with pytest.raises(ValueError, match="expected 3 images"):
        batched_image_features(model.visual, pixel_values, (1, 8, 12), 3)


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("name", ["equal_windows", "uneven_windows"])
def test_gradients_match_transformers(name, checkpointing):
    model = Qwen2_5_VLModel(Qwen2_5_VLConfig(**vlm_kwargs(name))).train()
    randomise_vision(model, seed=1)
    pixel_values, grid_thw = pixels(name, 2, seed=3)
    weights = torch.randn(hf_features(model, pixel_values, grid_thw).shape, generator=torch.Generator().manual_seed(2))

    def grads(features) -> list[torch.Tensor]:
        model.zero_grad()
        (features(model, pixel_values, grid_thw) * weights).sum().backward()
        return [p.grad.clone() for p in model.visual.parameters()]

    want = grads(hf_features)
    calls = []
    if checkpointing:  # the trainer's --gradient-checkpointing
        model.gradient_checkpointing_enable()
        for block in model.visual.blocks:  # count the checkpointed blocks
            checkpoint = block._gradient_checkpointing_func
            block._gradient_checkpointing_func = lambda fn, *args, f=checkpoint: calls.append(1) or f(fn, *args)
    got = grads(batched_features)
    assert len(calls) == (len(model.visual.blocks) if checkpointing else 0)
    for (param, _), g, w in zip(model.visual.named_parameters(), got, want):
        assert (g - w).norm() <= 1e-4 * w.norm(), param


def test_inference_mode_and_bfloat16_then_a_training_step_on_the_same_grid():
    window_layout.cache_clear()  # the layout is first built under inference mode, then reused for backward
    model = vision_model("equal_windows")
    pixel_values, grid_thw = pixels("equal_windows", 2)
    half = copy.deepcopy(model).to(torch.bfloat16)
    with torch.inference_mode():
        want = hf_features(half, pixel_values, grid_thw).float()
        got = batched_features(half, pixel_values, grid_thw)
    assert got.dtype == torch.bfloat16
    # Two bfloat16 computations differ by their rounding, a few parts in a hundred of the largest value.
    assert (got.float() - want).abs().max() <= 3e-2 * want.abs().max()
    trainable = copy.deepcopy(model).train()
    batched_features(trainable, pixel_values, grid_thw).square().mean().backward()
    assert all(p.grad is not None for p in trainable.visual.parameters())


@pytest.mark.parametrize("name", ["equal_windows", "uneven_windows"])
def test_the_backbone_encodes_the_same_condition_as_with_transformers_tower(name, monkeypatch):
    height, width = TOWERS[name][:2]
    config = BackboneConfig(vlm_config=vlm_kwargs(name), image_height_px=height, image_width_px=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        bb = VLBackbone.build(config, build_word_tokenizer(INSTRUCTIONS)).eval()
    randomise_vision(bb.vlm)
    rng = np.random.default_rng(5)
    image = lambda: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # noqa: E731
    observations = [([image() for _ in config.camera_names], text, None) for text in INSTRUCTIONS]
    inputs = bb.prepare(observations)
    with torch.no_grad():
        batched = bb.encode(inputs).tensors()
        monkeypatch.setattr(backbone_module, "shared_grid", lambda grid_thw: None)  # transformers' own tower
        reference = bb.encode(inputs).tensors()
    for key, want in reference.items():
        if want.is_floating_point():
            assert (batched[key] - want).abs().max().item() <= 1e-5, key
        else:
            assert torch.equal(batched[key], want), key
