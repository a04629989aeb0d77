"""Training configuration (paper defaults where the paper gives them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIXED_PRECISIONS = ("no", "bf16")  # what accelerate's `mixed_precision` may be for this trainer


@dataclass
class TrainConfig:
    steps: int = 2000  # stage-1 optimizer steps
    rater_steps: int = 500  # stage-2 optimizer steps (0 skips stage 2)
    batch_size: int = 16
    lr_language_model: float = 1e-4  # backbone decoder (AsyncVLA Sec. 4.1)
    lr_action_expert: float = 1e-4  # action expert (AsyncVLA Sec. 4.1)
    lr_vision: float = 2e-5  # vision encoder (AsyncVLA Sec. 4.1)
    lr_rater: float = 1e-4
    weight_decay: float = 0.0  # AdamW, paper: 0
    warmup_steps: int = 100  # linear warm-up, then cosine decay to 0
    grad_clip_norm: float = 1.0
    unified: bool = True  # Alg. 2 random masks; False trains plain SFM (the "w/o unified training" ablation)
    time_misalignment: bool = True  # pair targets with observations up to one chunk older
    # Gaussian perturbation of the ground-truth history, in the actions' own units (rad): the same
    # size on every joint, whatever its spread in the data.
    history_noise_rad: float = 0.02
    # Regularisers against shortcut learning on small datasets (0 = off, the paper's setting). A small
    # policy trained from scratch on a few hundred demonstrations otherwise tells episodes apart by
    # their exact state and history (the sim's start pose is randomised) and never learns to look.
    state_noise_rad: float = 0.0  # Gaussian noise on the action side's state input, in the state's units (rad)
    history_dropout: float = 0.0  # probability that a sample's whole history is marked empty
    sfm_fraction: float = 0.0  # extra share of stage-1 samples with the whole chunk masked (see noise_chunks)
    # Share of stage-1 samples with a clean-prefix mask instead (chunk continuation, see noise_chunks);
    # prefixes up to the policy's expert.continuation_prefix, which must then be >= 1.
    prefix_fraction: float = 0.0
    # Weight of an auxiliary loss: regress the privileged scene state (observation.environment_state:
    # cube pose, instructed area) from the backbone's last prefix token (0 = off, the paper's setting).
    env_state_loss_weight: float = 0.0
    # Weight of a second one on the conv vision encoder itself: spatial soft-argmax keypoints of its
    # feature map regress the same scene state (training/scene_heads.py). 0 = off.
    encoder_env_state_loss_weight: float = 0.0
    # Weight of a third on the action expert: every action token's decoder output regresses the same
    # scene state, so the action side learns early to take the cube and the instructed area from the
    # prefix (training/scene_heads.py). 0 = off.
    action_env_state_loss_weight: float = 0.0
    # How many of the recorded scene state's values, counted from the first, the prefix and encoder heads
    # (`env_state_dims`) and the action-token head (`action_env_state_dims`) regress; 0 = all of them.
    # The sim records the cube pose and the instructed area first (7 values), then each area's position
    # by colour (task.ENVIRONMENT_STATE_NAMES).
    env_state_dims: int = 0
    action_env_state_dims: int = 0
    # Decay of an exponential moving average of the weights stage 1 trains (training/ema.py); the average
    # is what checkpoints and the final policy hold, and what the rater is trained on. 0 = off.
    ema_decay: float = 0.0
    # Random-shift augmentation (DrQ, Kostrikov et al. 2020): each training image is padded by this
    # many pixels (edge replicated) and cropped back at a random offset (0 = off, the paper's setting).
    image_shift_px: int = 0
    checkpoint_every: int = 500  # steps; the final step is always saved
    # How many of the run's newest checkpoints to keep: each save deletes the older ones (a 3B ZeRO-2
    # checkpoint, optimizer state included, is about 60 GB). 0 = keep them all.
    keep_checkpoints: int = 0
    log_every: int = 10  # steps between logged scalars
    seed: int = 0
    device: str = "cpu"
    # "bf16": accelerate's autocast to bfloat16 around each step's forward (GPU), "no": float32 throughout.
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    num_workers: int = 0  # processes that prepare batches ahead of the optimizer (0: in the training loop)

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"TrainConfig.mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, got {self.mixed_precision!r}")
        if not (isinstance(self.ema_decay, (int, float)) and 0.0 <= self.ema_decay < 1.0):
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name in ("history_dropout", "sfm_fraction", "prefix_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"TrainConfig.{name} must be in [0, 1], got {value!r}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("rater_steps", "warmup_steps", "num_workers", "image_shift_px", "env_state_dims", "action_env_state_dims",
                     "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an int >= 0, got {value!r}")
        for name in ("lr_language_model", "lr_action_expert", "lr_vision", "lr_rater", "weight_decay",
                     "grad_clip_norm", "history_noise_rad", "state_noise_rad", "env_state_loss_weight",
                     "encoder_env_state_loss_weight", "action_env_state_loss_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")


def train_config_from_saved(saved: dict) -> TrainConfig:
    """The TrainConfig a checkpoint recorded (`dataclasses.asdict`), including those written before
    mixed precision went through accelerate (a `bf16` flag then)."""
    saved = dict(saved)
    if "bf16" in saved:
        saved["mixed_precision"] = "bf16" if saved.pop("bf16") else "no"
    return TrainConfig(**saved)
