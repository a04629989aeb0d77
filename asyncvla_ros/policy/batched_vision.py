"""Qwen2.5-VL's vision tower run as batched tensor ops over images that share one grid.

transformers' tower packs every image into one sequence and, on its sdpa and eager paths, splits that
sequence back into one attention call per image (and per window), and it builds the rotary positions and
the window order in per-image Python loops. Every image this package encodes has the same size (all
cameras, all batch elements), so the images are a batch dimension here: one
``scaled_dot_product_attention`` call per block, and the positions and window order built once per grid
shape and device. The tower's own modules and weights do the work; only the packing differs, so the
output is transformers' ``get_image_features(...).pooler_output`` concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WindowLayout:
    """Where each token of one frame sits for window attention; the same for every frame of a grid.

    The tower permutes tokens in units of one spatial-merge block (merge x merge patches), so that each
    window's tokens are contiguous and the merger sees each block's patches side by side.
    """

    order: torch.Tensor  # (merged,) long: merged token at each window-ordered slot
    restore: torch.Tensor  # (merged,) long: inverse of `order`, back to the processor's raster-block order
    position_ids: torch.Tensor  # (tokens, 2) long: (row, col) of each patch, in window order
    # Patches per window when every window holds the same number; None when edge windows are smaller.
    window_tokens: int | None
    # (tokens, tokens) bool, True where two patches share a window; only when window_tokens is None.
    same_window: torch.Tensor | None


def shared_grid(image_grid_thw: torch.Tensor) -> tuple[int, int, int] | None:
    """The one (t, h, w) patch grid of all images, or None when the images differ in size.

    Args:
        image_grid_thw: (N, 3) grid per image, as the image processor returns it.
    """
    rows = {tuple(int(v) for v in row) for row in image_grid_thw.tolist()}
    return rows.pop() if len(rows) == 1 else None


@lru_cache(maxsize=16)
def window_layout(h: int, w: int, merge: int, merger_window: int, device: torch.device) -> WindowLayout:
    """The window layout of one frame of (h, w) patches.

    Args:
        h, w: patches per frame, rows and columns (multiples of `merge`).
        merge: the tower's spatial_merge_size.
        merger_window: window side in merged tokens (window_size // merge // patch_size).
        device: where the index tensors live.

    Returns:
        The layout; cached per grid and device, so callers must not modify its tensors.
    """
    # Built outside inference mode so that a layout first made under torch.inference_mode can still be
    # saved for backward by a later training step that gets it from the cache.
    with torch.inference_mode(False), torch.no_grad():
        mh, mw, unit = h // merge, w // merge, merge * merge
        # Pad to whole windows with -1, then read windows out row by row, the way transformers orders them.
        nh, nw = -(-mh // merger_window), -(-mw // merger_window)
        merged = torch.arange(mh * mw).view(mh, mw)
        padded = F.pad(merged, (0, nw * merger_window - mw, 0, nh * merger_window - mh), value=-1)
        windows = padded.view(nh, merger_window, nw, merger_window).permute(0, 2, 1, 3)  # (nh, nw, win, win)
        window_id = torch.arange(nh * nw).view(nh, nw, 1, 1).expand_as(windows)
        real = windows >= 0
        order = windows[real]  # (merged,)
        restore = torch.argsort(order)

        # Patches arrive grouped by merge block: (block row, block col, row in block, col in block).
        rows = torch.arange(h).view(mh, merge, 1, 1).expand(mh, merge, mw, merge)
        cols = torch.arange(w).view(1, 1, mw, merge).expand(mh, merge, mw, merge)
        positions = torch.stack([rows, cols], dim=-1).permute(0, 2, 1, 3, 4).reshape(mh * mw, unit, 2)
        positions = positions[order].reshape(h * w, 2)  # (tokens, 2)

        counts = real.sum(dim=(2, 3)).flatten()  # no window is empty: the padding stops short of a whole window
        window_tokens, same_window = None, None
        if bool((counts == counts[0]).all()):
            window_tokens = int(counts[0]) * unit
        else:
            patch_window = window_id[real].repeat_interleave(unit)  # (tokens,)
            same_window = patch_window[:, None] == patch_window[None, :]
            same_window = same_window.to(device)
        return WindowLayout(order=order.to(device), restore=restore.to(device), position_ids=positions.to(device),
                            window_tokens=window_tokens, same_window=same_window)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on (frames, tokens, heads, head_dim), in float32 like transformers' tower."""
    dtype = x.dtype
    x = x.float()
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(dtype)


def _attention(attn: nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, window_tokens: int,
               mask: torch.Tensor | None) -> torch.Tensor:
    """One block's self-attention over (frames, tokens, d), every window of every frame in one call."""
    frames, tokens, dim = x.shape
    heads = attn.num_heads
    q, k, v = attn.qkv(x).view(frames, tokens, 3, heads, dim // heads).unbind(2)  # (F, L, heads, hd) each
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    # Window order makes each window contiguous, so windows become batch entries.
    q, k, v = (t.reshape(-1, window_tokens, heads, dim // heads).transpose(1, 2)
               for t in (q, k, v))  # (F * windows, heads, window_tokens, hd)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
    return attn.proj(out.transpose(1, 2).reshape(frames, tokens, dim))  # (F, L, d)


def _block(block: nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, window_tokens: int,
           mask: torch.Tensor | None) -> torch.Tensor:
    x = x + _attention(block.attn, block.norm1(x), cos, sin, window_tokens, mask)
    return x + block.mlp(block.norm2(x))


def batched_image_features(tower: nn.Module, pixel_values: torch.Tensor, grid_thw: tuple[int, int, int],
                           num_images: int) -> torch.Tensor:
    """Image tokens of `num_images` images of one grid, as transformers' tower computes them.

    Full-attention blocks attend over each frame at once, (frames, heads, tokens, head_dim). Window blocks
    attend over (frames * windows, heads, window_tokens, head_dim) when every window is full and equal (the
    merged grid divisible by the window, or smaller than it). Otherwise the edge windows are smaller, and the
    window blocks attend over whole frames with a same-window mask, which gives the same result as
    transformers' per-window calls and keeps any image size batched.

    Args:
        tower: transformers' Qwen2.5-VL vision tower (``Qwen2_5_VLModel.visual``); its weights are used as they are.
        pixel_values: (num_images * t * h * w, channels * temporal_patch * patch * patch) flattened patches,
            as the Qwen2-VL image processor returns them.
        grid_thw: the (t, h, w) patch grid every image shares.
        num_images: N, the number of images.

    Returns:
        (N * t * h * w / merge**2, out_hidden_size) image tokens, image after image.

    Raises:
        ValueError: the grid does not divide into merge blocks, or pixel_values does not hold N such grids.
    """
    t, h, w = (int(v) for v in grid_thw)
    merge = tower.spatial_merge_size
    unit = merge * merge
    if h % merge or w % merge:
        raise ValueError(f"grid_thw {grid_thw}: h and w must be multiples of spatial_merge_size {merge}")
    frames, tokens = num_images * t, h * w
    if pixel_values.shape[0] != frames * tokens:
        raise ValueError(f"pixel_values has {pixel_values.shape[0]} patches, expected {num_images} images of "
                         f"grid {grid_thw} = {frames * tokens}")
    merger_window = tower.window_size // merge // tower.patch_size
    if merger_window < 1:
        raise ValueError(f"window_size {tower.window_size} is smaller than one merge block "
                         f"({merge} x {tower.patch_size} px)")
    layout = window_layout(h, w, merge, merger_window, pixel_values.device)

    x = tower.patch_embed(pixel_values.type(tower.dtype))  # (F * L, d)
    dim = x.shape[-1]
    x = x.view(frames, tokens // unit, unit, dim)[:, layout.order].reshape(frames, tokens, dim)  # (F, L, d) window order
    cos, sin = tower.rotary_pos_emb(x, layout.position_ids)  # (L, hd) each
    cos, sin = cos[:, None, :], sin[:, None, :]  # (L, 1, hd): broadcast over heads

    for i, block in enumerate(tower.blocks):
        if i in tower.fullatt_block_indexes:
            window_tokens, mask = tokens, None
        elif layout.window_tokens is None:
            window_tokens, mask = tokens, layout.same_window
        else:
            window_tokens, mask = layout.window_tokens, None
        step = partial(_block, block, cos=cos, sin=sin, window_tokens=window_tokens, mask=mask)
        # Honour gradient_checkpointing_enable(): transformers checkpoints inside the block's own forward,
        # which this path does not call.
        if getattr(block, "gradient_checkpointing", False) and block.training and torch.is_grad_enabled():
            x = block._gradient_checkpointing_func(step, x)
        else:
            x = step(x)

    merged = tower.merger(x)  # (F * L / unit, out)
    merged = merged.view(frames, tokens // unit, -1)[:, layout.restore]  # (F, L / unit, out) raster-block order
    return merged.reshape(frames * tokens // unit, -1)
