"""The backbone's decoder layers run over new tokens against a fixed key/value prefix.

transformers' own forward appends to its cache on every call and builds masks per call. A flow step
must instead leave the cached prefix untouched and keep static shapes (the same tensors every step,
so a GPU build can capture it in a CUDA graph). This module reuses the backbone's weights and its
rotary-embedding and rotation functions, but drives the layers itself:

- the new tokens attend to every valid prefix token and to each other (full attention);
- their rotary positions are explicit (continuing after the prefix's largest 3-D position);
- the prefix keys/values are read, never written; the new tokens' keys/values are returned
  so a caller can stack a second block of tokens on top (state/history context, then actions).

``test/policy/test_decoder.py`` checks the result against one transformers forward over the whole
sequence with the same block attention pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb


def key_bias(key_valid: torch.Tensor, num_new: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias (B, 1, 1, P + num_new): 0 where a key may be read, a large negative elsewhere.

    A float mask, because a boolean one is added as +1 in some attention paths.
    """
    B = key_valid.shape[0]
    allowed = torch.cat([key_valid, key_valid.new_ones(B, num_new)], dim=1)  # (B, P + S)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=key_valid.device)
    bias = bias.masked_fill(~allowed, torch.finfo(dtype).min)
    return bias[:, None, None, :]


@dataclass
class NewTokens:
    """Where a block of S new tokens sits: its rotary tables and what it may attend to.

    Computed once per block placement; every flow step of an `act()` reuses the same one.
    """

    cos: torch.Tensor  # (B, S, head_dim)
    sin: torch.Tensor  # (B, S, head_dim)
    bias: torch.Tensor  # (B, 1, 1, P + S) additive attention bias


def place_tokens(text_model: nn.Module, positions: torch.Tensor, prefix_valid: torch.Tensor, dtype: torch.dtype) -> NewTokens:
    """Rotary tables and attention bias for new tokens at `positions` (B, S) after a prefix."""
    B, S = positions.shape
    rope_positions = positions.unsqueeze(0).expand(3, B, S)  # (3, B, S): text tokens use one position on all axes
    probe = torch.empty(0, device=positions.device, dtype=dtype)  # only its dtype/device are read
    cos, sin = text_model.rotary_emb(probe, rope_positions)  # (B, S, head_dim) each
    return NewTokens(cos, sin, key_bias(prefix_valid, S, dtype))


def forward_with_prefix(
    text_model: nn.Module,
    hidden: torch.Tensor,
    placement: NewTokens,
    prefix_keys: tuple[torch.Tensor, ...],
    prefix_values: tuple[torch.Tensor, ...],
    return_kv: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Run new tokens through the Qwen2.5-VL text decoder, attending to a fixed prefix and each other.

    Args:
        text_model: the backbone's `Qwen2_5_VLTextModel` (its layers and final norm are used).
        hidden: (B, S, d) input embeddings of the new tokens.
        placement: their rotary tables and attention bias (`place_tokens`).
        prefix_keys / prefix_values: per layer (B, kv_heads, P, head_dim); read only.
        return_kv: also return the new tokens' per-layer keys/values (B, kv_heads, S, head_dim).

    Returns:
        (final-norm hidden states (B, S, d), new keys, new values); the key/value tuples are empty
        unless `return_kv`.
    """
    B, S, _ = hidden.shape
    cos, sin, bias = placement.cos, placement.sin, placement.bias
    new_keys, new_values = [], []
    for i, layer in enumerate(text_model.layers):
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)
        q = attn.q_proj(x).view(B, S, -1, attn.head_dim).transpose(1, 2)  # (B, heads, S, hd)
        k = attn.k_proj(x).view(B, S, -1, attn.head_dim).transpose(1, 2)  # (B, kv_heads, S, hd)
        v = attn.v_proj(x).view(B, S, -1, attn.head_dim).transpose(1, 2)  # (B, kv_heads, S, hd)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        keys = torch.cat([prefix_keys[i], k], dim=2)  # (B, kv_heads, P + S, hd)
        values = torch.cat([prefix_values[i], v], dim=2)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=attn.scaling, enable_gqa=True)
        out = out.transpose(1, 2).reshape(B, S, -1)  # (B, S, heads * hd)
        hidden = hidden + attn.o_proj(out)
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        if return_kv:
            new_keys.append(k)
            new_values.append(v)
    return text_model.norm(hidden), tuple(new_keys), tuple(new_values)
