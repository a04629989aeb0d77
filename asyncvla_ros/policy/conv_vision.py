"""A small convolutional image encoder for policies trained from scratch, in place of Qwen2.5-VL's ViT.

Qwen2.5-VL's vision tower at the tiny default's scale (112 px, 14 px patches merged 2 x 2, one 32-wide
block from random weights) gives each camera 4 x 4 tokens of 28 px: on the front camera one token
spans about 13 cm and the cube is about 8 px, and the policy trained on it could not place the gripper
on the cube. This encoder gives a finer grid (one token per 16 px, 7 x 7 at 112 px) from a convolution
stack that sees every pixel, with two coordinate channels (CoordConv, Liu et al. 2018) at the input and
before the output projection, so that "where" is in each token's value and not only in the decoder's
rotary phases.

Its tokens replace the vision tower's at the prompt's image-token positions; the 3-D rotary positions,
the prefix cache and everything downstream are unchanged (the grid is reported to the rotary index as
an image of 2G x 2G patches merged 2 x 2, which is what G x G tokens are to Qwen2.5-VL).
"""

from __future__ import annotations

import torch
from torch import nn

from asyncvla_ros.policy.config import TOKEN_PX

STRIDE = TOKEN_PX["conv"]  # input pixels per output token, each direction: 2^4, one per stride-2 stage
# RGB mean/std of ImageNet: a fixed, documented input scaling (the weights are learned from scratch).
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _coords(n: int, h: int, w: int, device, dtype) -> torch.Tensor:
    """(n, 2, h, w) pixel-centre coordinates in [-1, 1]: x (columns) then y (rows)."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])[None].expand(n, 2, h, w)


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class ConvImageEncoder(nn.Module):
    """uint8 images (N, H, W, 3) -> tokens (N, (H/16) * (W/16), out_size).

    Args:
        out_size: token width (the language model's hidden size).
        width: channels of the first stage; later stages double it twice.
    """

    def __init__(self, out_size: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.stages = nn.Sequential(
            _Block(3 + 2, c1, 5, 2),  # /2
            _Block(c1, c2, 3, 2),  # /4
            _Block(c2, c2, 3, 1),
            _Block(c2, c3, 3, 2),  # /8
            _Block(c3, c3, 3, 1),
            _Block(c3, c3, 3, 2),  # /16
        )
        self.project = nn.Conv2d(c3 + 2, out_size, 1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = images.shape
        dtype = self.project.weight.dtype
        x = (images.permute(0, 3, 1, 2).to(dtype) - self.mean.to(dtype)) / self.std.to(dtype)
        x = torch.cat([x, _coords(n, h, w, x.device, dtype)], dim=1)
        x = self.stages(x)
        x = torch.cat([x, _coords(n, x.shape[2], x.shape[3], x.device, dtype)], dim=1)
        return self.project(x).flatten(2).transpose(1, 2)  # (N, G_h * G_w, out_size)
