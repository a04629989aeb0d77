"""Policy checkpoints: safetensors for tensors, JSON for configs and statistics; nothing is unpickled.

Layout of a checkpoint directory:

    asyncvla_policy.json        format tag, PolicyConfig, normalisation statistics
    action_model.safetensors    action expert + confidence rater (+ the backbone's image position
                                embedding and conv image encoder when the config has them: they are
                                not part of Qwen2.5-VL)
    backbone/                   Qwen2.5-VL in transformers' own layout (config.json, model.safetensors,
                                tokenizer, preprocessor_config.json), loadable with from_pretrained

A directory holding only a Qwen2.5-VL checkpoint (config.json without asyncvla_policy.json) loads as a
policy whose action expert and rater are freshly initialised, the starting point for training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from asyncvla_ros.policy.config import PolicyConfig
from asyncvla_ros.policy.normalization import Normalizer

logger = logging.getLogger(__name__)

POLICY_FILE = "asyncvla_policy.json"
WEIGHTS_FILE = "action_model.safetensors"
BACKBONE_DIR = "backbone"
FORMAT = "asyncvla_ros.policy/1"
CONV_PREFIX = "backbone.conv_vision."


class CheckpointError(RuntimeError):
    """A checkpoint directory that cannot be loaded; the message says what is missing."""


def save_policy(policy, directory: str | Path) -> Path:
    """Write `policy` to `directory` (created if needed). Returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    policy.backbone.save_pretrained(directory / BACKBONE_DIR)
    tensors = {f"expert.{k}": v for k, v in policy.expert.state_dict().items()}
    tensors.update({f"rater.{k}": v for k, v in policy.rater.state_dict().items()})
    if policy.backbone.image_positions is not None:
        tensors["backbone.image_positions"] = policy.backbone.image_positions
    if policy.backbone.conv_vision is not None:
        tensors.update({f"{CONV_PREFIX}{k}": v for k, v in policy.backbone.conv_vision.state_dict().items()})
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, directory / WEIGHTS_FILE)
    config = dataclasses.asdict(policy.config)
    config["backbone"]["pretrained_dir"] = None  # the weights now live in backbone/
    meta = {"format": FORMAT, "config": config, "normalization": dataclasses.asdict(policy.normalizer)}
    (directory / POLICY_FILE).write_text(json.dumps(meta, indent=2))
    return directory


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a PolicyConfig.dtype name."""
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


@dataclass
class Checkpoint:
    """What a checkpoint directory holds, read but not yet assembled into a policy."""

    config: PolicyConfig
    normalizer: Normalizer | None = None  # None: a bare VLM directory (action expert and rater start untrained)
    weights: dict[str, torch.Tensor] | None = None  # action_model.safetensors
    backbone_dir: Path | None = None


def read_checkpoint(directory: str | Path, dtype: str | None = None) -> Checkpoint:
    """Read a directory written by `save_policy`, or a bare Qwen2.5-VL directory.

    Raises:
        CheckpointError: neither, or a format this version does not read.
    """
    directory = Path(directory)
    meta_path = directory / POLICY_FILE
    if not meta_path.is_file():
        if (directory / "config.json").is_file():
            logger.warning("%s holds a bare VLM checkpoint: action expert and rater start untrained", directory)
            config = PolicyConfig(dtype=dtype or "bfloat16")
            config.backbone.pretrained_dir = str(directory)
            return Checkpoint(config)
        raise CheckpointError(f"{directory} is not a policy checkpoint: no {POLICY_FILE} (nor a VLM config.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: format {meta.get('format')!r}, this version reads {FORMAT!r}")
    config = PolicyConfig.from_dict(meta["config"])
    if dtype is not None:
        config.dtype = dtype
    normalizer = Normalizer.from_dict(meta["normalization"])
    if config.expert.delta_actions != (normalizer.delta is not None):
        raise CheckpointError(f"{meta_path}: delta_actions is {config.expert.delta_actions} but the normalisation "
                              f"{'lacks' if config.expert.delta_actions else 'has'} delta statistics")
    return Checkpoint(config, normalizer, load_file(directory / WEIGHTS_FILE), directory / BACKBONE_DIR)


def load_weights(policy, checkpoint: Checkpoint) -> None:
    """Copy the checkpoint's action expert, rater (and image position embedding, conv encoder) into `policy`.

    Raises:
        CheckpointError: the config asks for an image position embedding or conv encoder the file lacks.
        RuntimeError: a tensor whose name or shape does not match the model (torch's strict loading).
    """
    weights = checkpoint.weights
    for name, module in (("expert", policy.expert), ("rater", policy.rater)):
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}, strict=True)
    image_positions = policy.backbone.image_positions
    if image_positions is not None:
        if "backbone.image_positions" not in weights:
            raise CheckpointError(f"{checkpoint.backbone_dir.parent / WEIGHTS_FILE}: the config asks for an image position "
                                  "embedding, the file has none")
        with torch.no_grad():
            image_positions.copy_(weights["backbone.image_positions"])
    conv = policy.backbone.conv_vision
    if conv is not None:
        conv_weights = {k[len(CONV_PREFIX):]: v for k, v in weights.items() if k.startswith(CONV_PREFIX)}
        if not conv_weights:
            raise CheckpointError(f"{checkpoint.backbone_dir.parent / WEIGHTS_FILE}: the config asks for the conv image "
                                  "encoder, the file has none of its weights")
        conv.load_state_dict(conv_weights, strict=True)
