"""Qwen2.5-VL as the semantic side of AsyncVLA: one observation in, one cached prefix out.

The prefix (system prompt, camera images, instruction, optionally the discretised state) is run once
per observation through the unmodified transformers model. Its per-layer keys/values are copied into
fixed-size buffers (``max_prefix_tokens``) so that every later flow step sees tensors of the same shape
and never touches the transformers cache object (which grows on every forward).

Rotary positions are Qwen2.5-VL's 3-D ones: computed explicitly with ``get_rope_index`` and passed in,
never left to the model's ``rope_deltas`` attribute, so the model holds no per-call state and two
threads may encode and act concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from asyncvla_ros.policy.batched_vision import batched_image_features, shared_grid
from asyncvla_ros.policy.config import BackboneConfig
from asyncvla_ros.policy.conv_vision import STRIDE as CONV_STRIDE
from asyncvla_ros.policy.conv_vision import ConvImageEncoder

logger = logging.getLogger(__name__)

STATE_BINS = 256


class InputError(ValueError):
    """An observation, state or history the policy refuses; the message names the input."""


@dataclass
class SemanticCondition:
    """The cached semantic condition of one (or B) observations.

    Tensors have a fixed prefix capacity P = ``max_prefix_tokens``; ``key_valid`` marks real tokens.
    """

    keys: tuple[torch.Tensor, ...]  # per decoder layer: (B, kv_heads, P, head_dim)
    values: tuple[torch.Tensor, ...]  # per decoder layer: (B, kv_heads, P, head_dim)
    key_valid: torch.Tensor  # (B, P) bool
    vl_embeddings: torch.Tensor  # (B, P, d): last-layer hidden states of the prefix, for the rater
    num_prefix_tokens: torch.Tensor  # (B,) long
    next_position: torch.Tensor  # (B,) long: max(prefix rotary position) + 1
    stamp_ns: int = 0  # capture time of the observation it encodes
    instruction: str = ""

    @property
    def batch_size(self) -> int:
        return self.key_valid.shape[0]

    def nbytes(self) -> int:
        tensors = [*self.keys, *self.values, self.key_valid, self.vl_embeddings]
        return sum(t.numel() * t.element_size() for t in tensors)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat name → tensor view, for safetensors files and inline transport on a topic."""
        out = {f"keys.{i}": k for i, k in enumerate(self.keys)}
        out.update({f"values.{i}": v for i, v in enumerate(self.values)})
        out.update(
            key_valid=self.key_valid,
            vl_embeddings=self.vl_embeddings,
            num_prefix_tokens=self.num_prefix_tokens,
            next_position=self.next_position,
        )
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], stamp_ns: int = 0, instruction: str = "") -> "SemanticCondition":
        num_layers = sum(1 for name in tensors if name.startswith("keys."))
        required = {"key_valid", "vl_embeddings", "num_prefix_tokens", "next_position"}
        required |= {f"keys.{i}" for i in range(num_layers)} | {f"values.{i}" for i in range(num_layers)}
        missing = sorted(required - set(tensors))
        if missing or num_layers == 0:
            raise InputError(f"semantic condition tensors incomplete: missing {missing or ['keys.0']}")
        return cls(
            keys=tuple(tensors[f"keys.{i}"] for i in range(num_layers)),
            values=tuple(tensors[f"values.{i}"] for i in range(num_layers)),
            key_valid=tensors["key_valid"].bool(),
            vl_embeddings=tensors["vl_embeddings"],
            num_prefix_tokens=tensors["num_prefix_tokens"].long(),
            next_position=tensors["next_position"].long(),
            stamp_ns=stamp_ns,
            instruction=instruction,
        )

    def to(self, device: torch.device | str) -> "SemanticCondition":
        moved = {name: t.to(device) for name, t in self.tensors().items()}
        return SemanticCondition.from_tensors(moved, self.stamp_ns, self.instruction)


class VLBackbone(nn.Module):
    """Qwen2.5-VL wrapped to turn observations into `SemanticCondition`s.

    Args:
        config: the backbone config.
        model: the transformers model (built or loaded by `build` / `load`).
        tokenizer: a tokenizer holding Qwen2.5-VL's chat and vision special tokens.
        image_processor: Qwen2-VL image processor (PIL backend: this machine has no torchvision).
    """

    def __init__(self, config: BackboneConfig, model: Qwen2_5_VLForConditionalGeneration, tokenizer, image_processor) -> None:
        super().__init__()
        self.config = config
        # Only the vision tower and the decoder are used; the LM head is never run.
        self.vlm = model.model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        if self.image_token_id != self.vlm.config.image_token_id:
            raise ValueError(
                f"tokenizer's <|image_pad|> id {self.image_token_id} != model image_token_id "
                f"{self.vlm.config.image_token_id}: tokenizer and weights do not belong together"
            )
        merge = self.vlm.config.vision_config.spatial_merge_size
        self.conv_vision = None
        if config.vision_encoder == "conv":
            self.conv_vision = ConvImageEncoder(self.hidden_size, config.conv_width).to(model.dtype)
            token_px = CONV_STRIDE
        else:
            token_px = self.vlm.config.vision_config.patch_size * merge
        self.grid = (config.image_height_px // token_px, config.image_width_px // token_px)  # tokens per image (rows, cols)
        # The rotary index reads an image of (rows, cols) tokens as (1, merge * rows, merge * cols) patches.
        self.grid_thw = (1, merge * self.grid[0], merge * self.grid[1])
        self.tokens_per_image = self.grid[0] * self.grid[1]
        self.image_positions = None
        if config.image_position_embedding:
            self.image_positions = nn.Parameter(
                torch.zeros(len(config.camera_names), self.tokens_per_image, self.hidden_size, dtype=model.dtype))
        self._warned_unknown = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, config: BackboneConfig, tokenizer) -> "VLBackbone":
        """A randomly initialised backbone from ``config.vlm_config`` using `tokenizer`'s special token ids."""
        ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
            ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
        kwargs = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.vlm_config.items()}
        text = kwargs.setdefault("text_config", {})
        text["vocab_size"] = max(int(text.get("vocab_size", 0)), len(tokenizer))
        # Qwen's default bos/eos ids lie outside a small vocabulary; the model never generates text.
        text.update(bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**kwargs, **ids))
        image_processor = Qwen2VLImageProcessorPil()
        return cls(config, model, tokenizer, image_processor)

    @classmethod
    def load(cls, config: BackboneConfig, directory: str | Path | None = None, dtype: torch.dtype = torch.float32) -> "VLBackbone":
        """Load weights, tokenizer and image processor from a local directory (never from a hub)."""
        directory = Path(directory or config.pretrained_dir or "")
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"no Qwen2.5-VL checkpoint at {directory} (expected config.json and *.safetensors)")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(directory, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(directory, local_files_only=True)
        return cls(config, model, tokenizer, image_processor)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write weights (safetensors), config, tokenizer and image processor in transformers' layout."""
        directory = Path(directory)
        full = Qwen2_5_VLForConditionalGeneration(self.vlm.config)
        full.model = self.vlm
        full.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)

    @property
    def text_model(self) -> nn.Module:
        return self.vlm.language_model

    @property
    def hidden_size(self) -> int:
        return self.vlm.config.text_config.hidden_size

    def check_condition(self, cond: SemanticCondition) -> None:
        """Refuse a semantic condition that this policy cannot plan from, before it is cached: features
        from another model size, a foreign dtype, a token count beyond the prefix buffer, non-finite
        values. The same checks as the encoder's output satisfies; planning on such a condition would
        fail (or silently read garbage) deep inside attention, on the control path.

        Raises:
            InputError: what does not fit, with the expected and received shapes.
        """
        text = self.vlm.config.text_config
        layers, kv_heads = text.num_hidden_layers, text.num_key_value_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        capacity, dtype = self.config.max_prefix_tokens, self.vlm.dtype
        if len(cond.keys) != layers or len(cond.values) != layers:
            raise InputError(f"semantic condition: {len(cond.keys)} key / {len(cond.values)} value layers, the policy has {layers}")
        for name, tensor in cond.tensors().items():
            if name in ("key_valid", "num_prefix_tokens", "next_position"):
                continue
            want = (1, capacity, self.hidden_size) if name == "vl_embeddings" else (1, kv_heads, capacity, head_dim)
            if tuple(tensor.shape) != want or tensor.dtype != dtype:
                raise InputError(f"semantic condition: {name} of shape {tuple(tensor.shape)} {tensor.dtype}, "
                                 f"the policy needs {want} {dtype}")
            if not torch.isfinite(tensor).all():
                raise InputError(f"semantic condition: {name} contains NaN or inf")
        if tuple(cond.key_valid.shape) != (1, capacity) or cond.num_prefix_tokens.shape != (1,) or cond.next_position.shape != (1,):
            raise InputError(f"semantic condition: key_valid {tuple(cond.key_valid.shape)}, num_prefix_tokens "
                             f"{tuple(cond.num_prefix_tokens.shape)}, next_position {tuple(cond.next_position.shape)}; "
                             f"the policy needs (1, {capacity}), (1,), (1,)")
        tokens, valid = int(cond.num_prefix_tokens[0]), int(cond.key_valid.sum())
        if not 0 < tokens <= capacity or tokens != valid:
            raise InputError(f"semantic condition: {tokens} prefix tokens ({valid} marked valid); the buffer holds {capacity}")
        if not 0 < int(cond.next_position[0]) <= text.max_position_embeddings:
            raise InputError(f"semantic condition: next_position {int(cond.next_position[0])} outside the model's "
                             f"rotary range (1 to {text.max_position_embeddings})")

    # ------------------------------------------------------------------ inputs

    def prompt(self, instruction: str, state_bins: Sequence[int] | None = None) -> str:
        """The chat-formatted prompt with one expanded image placeholder per camera."""
        image = "<|vision_start|>" + "<|image_pad|>" * self.tokens_per_image + "<|vision_end|>"
        state = "" if state_bins is None else "\nState: " + " ".join(str(int(b)) for b in state_bins)
        return (
            f"<|im_start|>system\n{self.config.system_prompt}<|im_end|>\n"
            f"<|im_start|>user\n{image * len(self.config.camera_names)}{instruction}{state}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )

    def check_images(self, images: Sequence[np.ndarray]) -> None:
        cams = self.config.camera_names
        if len(images) != len(cams):
            raise InputError(f"images: expected {len(cams)} images for cameras {list(cams)}, got {len(images)}")
        want = (self.config.image_height_px, self.config.image_width_px, 3)
        for name, img in zip(cams, images):
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.shape != want:
                got = (getattr(img, "shape", None), getattr(img, "dtype", type(img).__name__))
                raise InputError(f"image '{name}': expected uint8 array of shape {want}, got shape/dtype {got}")

    def prepare(self, observations: Sequence[tuple[Sequence[np.ndarray], str, np.ndarray | None]]) -> dict[str, torch.Tensor]:
        """Tokenise and preprocess a batch of (images, instruction, normalised state or None).

        Returns the model inputs, right-padded to the longest prompt.
        """
        texts, pixels = [], []
        for images, instruction, state_norm in observations:
            self.check_images(images)
            if not isinstance(instruction, str) or not instruction.strip():
                raise InputError(f"instruction: expected a non-empty string, got {instruction!r}")
            bins = None
            if self.config.state_in_prompt:
                if state_norm is None:
                    raise InputError("state: this policy puts the state in its prompt, but none was given")
                # Normalised state in [-3, 3] std → 256 bins, read by the VLM as words.
                bins = np.clip(np.round((np.clip(state_norm, -3, 3) + 3) / 6 * (STATE_BINS - 1)), 0, STATE_BINS - 1)
            texts.append(self.prompt(instruction.strip(), bins))
            pixels.extend(images)
        enc = self.tokenizer(texts, padding=True, padding_side="right", return_tensors="pt")
        input_ids = enc["input_ids"]
        if input_ids.shape[1] > self.config.max_prefix_tokens:
            raise InputError(
                f"prompt is {input_ids.shape[1]} tokens, more than max_prefix_tokens="
                f"{self.config.max_prefix_tokens}: shorten the instruction or raise the limit"
            )
        if not self._warned_unknown and self.tokenizer.unk_token_id is not None:
            if bool((input_ids == self.tokenizer.unk_token_id).any()):
                logger.warning("instruction has words this model's tokenizer does not know: %r", texts[0][-120:])
                self._warned_unknown = True
        if self.conv_vision is None:
            vis = self.image_processor(images=list(pixels), return_tensors="pt")
            pixel_values, grid_thw = vis["pixel_values"], vis["image_grid_thw"]
        else:  # the conv encoder takes the uint8 images as they are: (N, H, W, 3)
            pixel_values = torch.from_numpy(np.stack(pixels))
            grid_thw = torch.tensor([self.grid_thw] * len(pixels), dtype=torch.long)
        return {
            "input_ids": input_ids,
            "attention_mask": enc["attention_mask"],
            "mm_token_type_ids": (input_ids == self.image_token_id).int(),
            "pixel_values": pixel_values,
            "image_grid_thw": grid_thw,
        }

    # ------------------------------------------------------------------ forward

    def embed_prefix(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefix input embeddings with image features scattered in, and their 3-D rotary positions.

        Returns:
            inputs_embeds (B, T, d), position_ids (3, B, T), attention_mask (B, T).
        """
        device = self.vlm.device
        input_ids = inputs["input_ids"].to(device)
        attention_mask = inputs["attention_mask"].to(device)
        embeds = self.vlm.get_input_embeddings()(input_ids)  # (B, T, d)
        if self.conv_vision is None:
            pixel_values, grid_thw = inputs["pixel_values"].to(device), inputs["image_grid_thw"]
            grid = shared_grid(grid_thw)
            if grid is not None:  # always through prepare(): every image has the configured size
                feats = batched_image_features(self.vlm.visual, pixel_values, grid, len(grid_thw))
            else:
                feats = torch.cat(self.vlm.get_image_features(
                    pixel_values, grid_thw.to(device), return_dict=True).pooler_output, dim=0)
            feats = feats.to(embeds.dtype)  # (B * cams * tokens_per_image, d)
        else:
            feats = self.conv_vision(inputs["pixel_values"].to(device)).reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        if self.image_positions is not None:
            cams, tokens, d = self.image_positions.shape
            feats = (feats.view(-1, cams, tokens, d) + self.image_positions.to(feats.dtype)).view(-1, d)
        image_mask = (input_ids == self.image_token_id).unsqueeze(-1)
        embeds = embeds.masked_scatter(image_mask, feats)
        position_ids, _ = self.vlm.get_rope_index(
            input_ids,
            mm_token_type_ids=inputs["mm_token_type_ids"].to(device),
            image_grid_thw=inputs["image_grid_thw"].to(device),
            attention_mask=attention_mask,
        )  # (3, B, T)
        return embeds, position_ids, attention_mask

    def _layer_keys_values(self, hidden_states: tuple[torch.Tensor, ...], position_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per decoder layer, the (keys, values) (B, kv_heads, T, head_dim) of its input hidden states
        `hidden_states[i]` (B, T, d), rotated at `position_ids` (3, B, T): what its cache would hold."""
        text = self.text_model
        cos, sin = text.rotary_emb(hidden_states[0], position_ids)
        kv = []
        for layer, hidden in zip(text.layers, hidden_states):
            attn = layer.self_attn
            x = layer.input_layernorm(hidden)
            B, T, _ = x.shape
            k = attn.k_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)  # (B, kvh, T, hd)
            v = attn.v_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)
            _, k = apply_rotary_pos_emb(k, k, cos, sin)
            kv.append((k, v))
        return kv

    def encode(self, inputs: dict[str, torch.Tensor], stamp_ns: int = 0, instruction: str = "") -> SemanticCondition:
        """Run the prefix once and return its keys/values in fixed-size buffers.

        Gradients flow when called outside ``torch.no_grad`` (training).
        """
        embeds, position_ids, attention_mask = self.embed_prefix(inputs)
        # Under gradient checkpointing transformers runs the layers without a cache; the keys/values
        # are then computed from each layer's input, as the layer itself computes them.
        checkpointed = self.text_model.gradient_checkpointing and self.training
        out = self.text_model(inputs_embeds=embeds, position_ids=position_ids, attention_mask=attention_mask,
                              use_cache=not checkpointed, output_hidden_states=checkpointed)
        if checkpointed:
            kv = self._layer_keys_values(out.hidden_states, position_ids)
        else:
            kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        pad = self.config.max_prefix_tokens - embeds.shape[1]
        keys = tuple(F.pad(k, (0, 0, 0, pad)) for k, _ in kv)  # (B, kvh, P, hd)
        values = tuple(F.pad(v, (0, 0, 0, pad)) for _, v in kv)
        valid = F.pad(attention_mask.bool(), (0, pad))  # (B, P)
        last = position_ids.amax(dim=0).masked_fill(~attention_mask.bool(), -1)  # (B, T)
        return SemanticCondition(
            keys=keys,
            values=values,
            key_valid=valid,
            vl_embeddings=F.pad(out.last_hidden_state, (0, 0, 0, pad)),
            num_prefix_tokens=attention_mask.sum(dim=1),
            next_position=last.amax(dim=1) + 1,
            stamp_ns=int(stamp_ns),
            instruction=instruction,
        )
