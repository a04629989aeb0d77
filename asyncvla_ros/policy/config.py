"""Configuration dataclasses for the AsyncVLA policy.

Every config validates itself in ``__post_init__`` and names the field and the bad value, so a typo
in a params file fails at start-up rather than as a shape error deep inside a forward pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Units of a policy's joint values: radians, degrees, or LeRobot's normalised motor ranges (-100..100 over
# a joint's calibrated span; 0..100 for a gripper).
JOINT_UNITS = ("rad", "deg", "range_m100_100", "range_0_100")

SYSTEM_PROMPT = "You are a helpful physical assistant."
ACT_MODES = ("asyncvla", "sfm_only", "random_mask")
# How act() computes a chunk: "eager" builds each tensor as it goes (the reference); "static" runs the
# same math from buffers allocated once (static_plan.py); "graphs" replays those stages from CUDA
# graphs (CUDA only); "auto" = graphs on CUDA, eager elsewhere.
PLAN_PATHS = ("auto", "eager", "static", "graphs")
# Vision encoders -> image pixels per token, each direction: Qwen2.5-VL's 14 px patches merged 2 x 2,
# or the conv encoder's stride.
TOKEN_PX = {"qwen": 28, "conv": 16}
VISION_ENCODERS = tuple(TOKEN_PX)
DTYPES = ("float32", "bfloat16", "float16")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive int, got {value!r}")


def tiny_vlm_config(hidden_size: int = 64, num_layers: int = 2, vision_hidden_size: int = 32, vision_depth: int = 1) -> dict[str, Any]:
    """Keyword arguments of a ``Qwen2_5_VLConfig`` small enough for CPU tests and the embedded default.

    The text model keeps Qwen2.5-VL's structure (GQA, 3-D rotary positions, RMSNorm, SwiGLU); only the
    sizes shrink. ``mrope_section`` must sum to head_dim / 2.
    """
    num_heads = 4
    head_dim = hidden_size // num_heads
    half = head_dim // 2
    # Split the rotary frequencies between the temporal, height and width position axes.
    height = width = (half - half // 4) // 2
    mrope = [half - height - width, height, width]
    return {
        "text_config": {
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "vocab_size": 512,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        },
        "vision_config": {
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": max(1, vision_hidden_size // 16),
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": list(range(vision_depth)),
        },
        "tie_word_embeddings": False,
    }


@dataclass
class BackboneConfig:
    """The vision-language backbone (Qwen2.5-VL) and how one observation becomes a prompt."""

    # Local directory holding a Qwen2.5-VL checkpoint (config.json + safetensors + tokenizer +
    # preprocessor_config.json). None builds a randomly initialised model from `vlm_config`.
    pretrained_dir: str | None = None
    # Keyword arguments for Qwen2_5_VLConfig when building from scratch (ignored with pretrained_dir).
    vlm_config: dict[str, Any] = field(default_factory=tiny_vlm_config)
    camera_names: tuple[str, ...] = ("front", "wrist")
    # Every image must arrive at exactly this size (pixels); the camera side resizes, the policy
    # never reshapes silently. Multiples of 28 (patch 14 x merge 2), or of 16 for the conv encoder.
    image_height_px: int = 56
    image_width_px: int = 56
    # Fixed capacity of the cached prefix (tokens). A prompt longer than this is an error.
    max_prefix_tokens: int = 128
    # Put the robot state into the prompt as 256-bin discretised text (the action side always sees it).
    state_in_prompt: bool = False
    # A learned embedding per camera and image-token position, added to the vision tower's output
    # before it enters the language model. Qwen2.5-VL encodes positions only as rotations of queries
    # and keys (2-D in the vision tower, 3-D in the decoder), so an image token's value carries no
    # "where"; a pretrained 3B model learns to recover it, a small model trained from scratch does
    # not (it learned to ignore the images). Zero-initialised, so a pretrained backbone starts unchanged.
    image_position_embedding: bool = False
    # What turns each image into tokens: "qwen" = Qwen2.5-VL's own vision tower (the real path, and
    # what a pretrained checkpoint has); "conv" = a small convolutional encoder trained from scratch
    # (`conv_vision.py`), one token per 16 px, for tiny policies that must localise from few data.
    vision_encoder: str = "qwen"
    conv_width: int = 16  # "conv": channels of its first stage (later stages 2x and 4x)
    system_prompt: str = SYSTEM_PROMPT

    @property
    def token_px(self) -> int:
        """Image pixels per token, each direction."""
        return TOKEN_PX[self.vision_encoder]

    def __post_init__(self) -> None:
        self.camera_names = tuple(self.camera_names)
        if not self.camera_names:
            raise ValueError("BackboneConfig.camera_names must name at least one camera, got ()")
        _positive(self, "image_height_px", "image_width_px", "max_prefix_tokens", "conv_width")
        if self.vision_encoder not in VISION_ENCODERS:
            raise ValueError(f"BackboneConfig.vision_encoder must be one of {VISION_ENCODERS}, got {self.vision_encoder!r}")
        for name in ("image_height_px", "image_width_px"):
            if getattr(self, name) % self.token_px:
                raise ValueError(f"BackboneConfig.{name} must be a multiple of {self.token_px} for the "
                                 f"{self.vision_encoder!r} vision encoder, got {getattr(self, name)}")


@dataclass
class ActionExpertConfig:
    """Action-side tokens: state, executed-action history and the L noisy action tokens."""

    action_dim: int = 6  # joints (rad) incl. gripper
    state_dim: int = 6  # joint positions (rad)
    chunk_len: int = 10  # L: actions per chunk, one per control period
    # K: executed actions given as condition tokens (~1 s of control in the decoupling paper); 0 = off.
    history_len: int = 20
    # Chunk targets relative to the current state (a[t+i] - s[t]; the state's dimensions are the
    # action's joints) instead of absolute joint positions. The history stays absolute.
    delta_actions: bool = False
    # The longest clean prefix of a chunk the policy was trained to continue from (contiguous-prefix
    # masks mixed into Alg. 2, TrainConfig.prefix_fraction); 0 = not trained for it. The action loop's
    # `continue` mode gives plan_delay_ticks steps of context and warns past this.
    continuation_prefix: int = 0
    # The age of the semantic condition as an input (the state's stamp minus the encoded observation's),
    # ages clipped to [0, this], s; 0 = no such input (the decoupling paper's action module, which must
    # guess how old its semantics are). Time-misalignment training shows it the delay it drew, so one
    # policy plans from fresh and from stale semantics alike (`train --semantic-age-input`).
    semantic_age_max_s: float = 0.0
    # Sinusoidal time embedding periods (flow time tau in [0, 1]).
    time_min_period: float = 4e-3
    time_max_period: float = 4.0

    def __post_init__(self) -> None:
        _positive(self, "action_dim", "state_dim", "chunk_len")
        if self.delta_actions and self.state_dim != self.action_dim:
            raise ValueError(f"ActionExpertConfig.delta_actions needs state_dim == action_dim (the state's joints are "
                             f"the action's), got {self.state_dim} and {self.action_dim}")
        if not isinstance(self.history_len, int) or self.history_len < 0:
            raise ValueError(f"ActionExpertConfig.history_len must be an int >= 0, got {self.history_len!r}")
        if not isinstance(self.continuation_prefix, int) or not 0 <= self.continuation_prefix < self.chunk_len:
            raise ValueError(f"ActionExpertConfig.continuation_prefix must be an int in [0, chunk_len), got {self.continuation_prefix!r}")
        if not (isinstance(self.semantic_age_max_s, (int, float)) and 0.0 <= self.semantic_age_max_s < float("inf")):
            raise ValueError(f"ActionExpertConfig.semantic_age_max_s must be a finite number >= 0, got {self.semantic_age_max_s!r}")
        if not 0 < self.time_min_period < self.time_max_period:
            raise ValueError(
                "ActionExpertConfig needs 0 < time_min_period < time_max_period, got "
                f"{self.time_min_period!r}, {self.time_max_period!r}"
            )


@dataclass
class RaterConfig:
    """Confidence rater (paper: 4 layers, 32 heads, FFN 6144 over the 3B model's 2048-wide tokens)."""

    num_layers: int = 2
    num_heads: int = 4
    hidden_size: int = 64
    ffn_size: int = 128
    threshold: float = 0.5  # T: tokens with confidence p < T are regenerated by AFM

    def __post_init__(self) -> None:
        _positive(self, "num_layers", "num_heads", "hidden_size", "ffn_size")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"RaterConfig.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"RaterConfig.threshold must be in (0, 1), got {self.threshold!r}")


@dataclass
class JointSpaceConfig:
    """What the policy's state and action values are: its dataset's joints and units (control/joint_space.py
    maps a robot's radians onto them). The defaults, no names and rad, are this package's own sim data."""

    names: tuple[str, ...] = ()  # the joints in state/action order (the dataset's names); empty = the robot's joint_names
    units: tuple[str, ...] = ()  # per joint one of JOINT_UNITS; empty = rad for every joint

    def __post_init__(self) -> None:
        self.names, self.units = tuple(self.names), tuple(self.units)
        bad = sorted({u for u in self.units if u not in JOINT_UNITS})
        if bad:
            raise ValueError(f"JointSpaceConfig.units: unknown units {bad}; known {JOINT_UNITS}")
        if self.units and self.names and len(self.units) != len(self.names):
            raise ValueError(f"JointSpaceConfig: {len(self.units)} units for {len(self.names)} joints")


@dataclass
class PolicyConfig:
    """The whole AsyncVLA policy."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    expert: ActionExpertConfig = field(default_factory=ActionExpertConfig)
    rater: RaterConfig = field(default_factory=RaterConfig)
    num_flow_steps: int = 10  # Euler steps per flow (SFM and AFM each)
    dtype: str = "float32"  # weights and activations; bfloat16 on GPU
    model_id: str = "asyncvla-tiny"
    joints: JointSpaceConfig = field(default_factory=JointSpaceConfig)

    def __post_init__(self) -> None:
        if isinstance(self.joints, dict):
            self.joints = JointSpaceConfig(**self.joints)
        if isinstance(self.backbone, dict):
            self.backbone = BackboneConfig(**self.backbone)
        if isinstance(self.expert, dict):
            self.expert = ActionExpertConfig(**self.expert)
        if isinstance(self.rater, dict):
            self.rater = RaterConfig(**self.rater)
        _positive(self, "num_flow_steps")
        if self.dtype not in DTYPES:
            raise ValueError(f"PolicyConfig.dtype must be one of {DTYPES}, got {self.dtype!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"PolicyConfig: unknown fields {unknown}; valid fields are {sorted(known)}")
        return cls(**data)
