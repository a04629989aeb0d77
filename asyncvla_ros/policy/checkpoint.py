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
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise CheckpointError(f"{meta_path}: format {found!r}, this version reads {FORMAT!r}")
        config = PolicyConfig.from_dict(meta["config"])
        if dtype is not None:
            config.dtype = dtype
        normalizer = Normalizer.from_dict(meta["normalization"])
    except CheckpointError:
        raise
    except KeyError as err:
        raise CheckpointError(f"{meta_path}: no {err} entry") from err
    except (ValueError, TypeError, AttributeError) as err:  # bad JSON, unknown or out-of-range fields, wrong types
        raise CheckpointError(f"{meta_path}: {err}") from err
    if config.expert.delta_actions != (normalizer.delta is not None):
        raise CheckpointError(f"{meta_path}: delta_actions is {config.expert.delta_actions} but the normalisation "
                              f"{'lacks' if config.expert.delta_actions else 'has'} delta statistics")
    weights_path = directory / WEIGHTS_FILE
    try:
        weights = load_file(weights_path)
    except Exception as err:  # safetensors raises its own error type (and OSError for a missing file)
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from err
    return Checkpoint(config, normalizer, weights, directory / BACKBONE_DIR)


def load_weights(policy, checkpoint: Checkpoint) -> None:
    """Copy the checkpoint's action expert, rater (and image position embedding, conv encoder) into `policy`.

    Raises:
        CheckpointError: the config asks for an image position embedding or conv encoder the file lacks, or
            a tensor's name or shape does not match the model the config describes.
    """
    weights, path = checkpoint.weights, checkpoint.backbone_dir.parent / WEIGHTS_FILE
    for name, module in (("expert", policy.expert), ("rater", policy.rater)):
        prefix = name + "."
        _load_strict(module, {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}, path, name)
    image_positions = policy.backbone.image_positions
    if image_positions is not None:
        if "backbone.image_positions" not in weights:
            raise CheckpointError(f"{checkpoint.backbone_dir.parent / WEIGHTS_FILE}: the config asks for an image position "
                                  "embedding, the file has none")
        if weights["backbone.image_positions"].shape != image_positions.shape:
            raise CheckpointError(f"{path}: backbone.image_positions has shape {tuple(weights['backbone.image_positions'].shape)}, "
                                  f"the config's model needs {tuple(image_positions.shape)}")
        with torch.no_grad():
            image_positions.copy_(weights["backbone.image_positions"])
    conv = policy.backbone.conv_vision
    if conv is not None:
        conv_weights = {k[len(CONV_PREFIX):]: v for k, v in weights.items() if k.startswith(CONV_PREFIX)}
        if not conv_weights:
            raise CheckpointError(f"{checkpoint.backbone_dir.parent / WEIGHTS_FILE}: the config asks for the conv image "
                                  "encoder, the file has none of its weights")
        _load_strict(conv, conv_weights, path, "conv image encoder")


def _load_strict(module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:  # torch lists every missing, unexpected or mis-shaped tensor
        raise CheckpointError(f"{path}: the {what} weights do not match the config's model: {err}") from err
