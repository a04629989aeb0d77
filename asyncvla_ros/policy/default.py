"""The embedded default policy, used when no model directory is given.

The trained checkpoint shipped in the package (`asyncvla_ros/models/default/`, made by
`scripts/train_budget_policy.sh` from sim demonstrations) is used when present. Without it (a tree it
was removed from), the fallback is the real model code with an untrained tiny configuration, built
deterministically (fixed seed, fixed vocabulary) so that separate semantic and action processes hold
identical weights. Its actions are noise around the arm's home pose, scaled down by the normalisation
statistics: the graph runs and the arm moves, but it does not do the task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asyncvla_ros.parameters import param
from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig
from asyncvla_ros.policy.normalization import FeatureStats, Normalizer
from asyncvla_ros.sim.task import INSTRUCTIONS

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models" / "default"
UNTRAINED_ID = "asyncvla-tiny-untrained"
# SO-101 home pose (rad) and a spread small enough that untrained noise stays near it.
_HOME_RAD = [0.0, -0.1, 0.16, 1.5, 0.0, 0.6]
_SPREAD_RAD = 0.15


@dataclass
class PolicySourceConfig:
    """Where a node's policy comes from (the semantic and the action node load the same one)."""

    model_dir: str = param("", "policy checkpoint or Qwen2.5-VL directory; empty = embedded default")
    device: str = param("cpu", "torch device, e.g. cpu or cuda:0")
    torch_threads: int = param(0, "CPU threads for torch in this process; 0 = torch's default", low=0, high=256)


def untrained_config() -> PolicyConfig:
    return PolicyConfig(
        backbone=BackboneConfig(image_height_px=112, image_width_px=112),
        expert=ActionExpertConfig(action_dim=6, state_dim=6, chunk_len=10, history_len=20),
        model_id=UNTRAINED_ID,
    )


def default_model_id() -> str:
    """The id of the policy `load_policy()` runs without a model directory (no weights are read)."""
    import json

    meta = BUNDLED_DIR / "asyncvla_policy.json"
    return json.loads(meta.read_text())["config"]["model_id"] if meta.is_file() else UNTRAINED_ID


def load_policy(model_dir: str = "", device: str = "cpu"):
    """The policy a node should run: `model_dir` if given, else the bundled default, else untrained tiny.

    Returns:
        (policy in eval mode, model id string)

    Raises:
        ValueError: `model_dir` cannot be loaded (naming the parameter and what is wrong).
    """
    from asyncvla_ros.policy.checkpoint import CheckpointError
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    if model_dir:
        try:
            policy = AsyncVLAPolicy.from_pretrained(model_dir, device=device)
        except CheckpointError as err:  # a node's parameter error: one line, exit 1 (nodes/runner.py)
            raise ValueError(f"model_dir {model_dir!r}: {err}") from err
        return policy, str(Path(model_dir).resolve())
    if (BUNDLED_DIR / "asyncvla_policy.json").is_file():
        policy = AsyncVLAPolicy.from_pretrained(BUNDLED_DIR, device=device)
        return policy, policy.config.model_id
    logger.warning("no model given and no trained default bundled: running an UNTRAINED tiny policy")
    policy = AsyncVLAPolicy.build(untrained_config(), list(INSTRUCTIONS), seed=0)
    home = FeatureStats(mean=list(_HOME_RAD), std=[_SPREAD_RAD] * 6)
    policy.normalizer = Normalizer(state=home, action=home)
    return policy.to(device).eval(), UNTRAINED_ID
