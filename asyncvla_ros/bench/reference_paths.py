"""Two slower ways to run AsyncVLA's flow steps, for `bench-policy` to compare against (never used to act).

- "hf_eager": each flow step is one forward of transformers' own Qwen2.5-VL text model against a
  `DynamicCache` holding the prefix and the state/history block; the cache grows by the action
  tokens and is cropped back after every step. This is what running the policy through transformers
  costs.
- "rebuild": the paper's SFM as its Tab. 6 times it: the prefix (vision tower and prompt) is encoded
  again at every flow step, then the state/history block and the action tokens run on it.

Both install themselves as the policy's `sample` for the duration of a `with` block, so `act()` draws
the same noise, runs the same rater and mask, and returns the same chunk (to numerical precision), with
its usual stage timings.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from transformers import DynamicCache

from asyncvla_ros.policy.sampler import flow_sample

REFERENCE_PATHS = ("hf_eager", "rebuild")


def _hf_velocity(policy, ctx):
    """The velocity of `ctx`'s action tokens through transformers' text model forward."""
    text_model = policy.backbone.text_model
    cache = DynamicCache(config=text_model.config)
    for i, (k, v) in enumerate(zip(ctx.keys, ctx.values)):
        cache.update(k, v, i)
    # One mask per attention type, given ready-made: the additive bias the action tokens use.
    masks = {kind: ctx.actions.bias for kind in set(text_model.config.layer_types)}
    positions = ctx.action_positions[None].expand(3, -1, -1)  # (3, B, L): text tokens use one position on all axes

    def velocity(noisy_actions: torch.Tensor, token_time: torch.Tensor) -> torch.Tensor:
        tokens = policy.expert.action_tokens(noisy_actions, token_time)  # (B, L, d)
        out = text_model(inputs_embeds=tokens, attention_mask=masks, position_ids=positions, past_key_values=cache, use_cache=True)
        cache.crop(-tokens.shape[1])  # back to the prefix and the state/history block
        return policy.expert.velocity(out.last_hidden_state)

    return velocity


@contextmanager
def reference_path(policy, path: str, images=None, instruction: str = "", state=None, history=None, semantic_age_s: float = 0.0):
    """Run `policy.act` through a reference path inside the block (eager plan path only).

    Args:
        path: "hf_eager" or "rebuild".
        images, instruction, state, history, semantic_age_s: what "rebuild" re-encodes and re-plans from
            at every step (the same as the `act()` calls inside the block are given).
    """
    if path not in REFERENCE_PATHS:
        raise ValueError(f"reference path must be one of {REFERENCE_PATHS}, got {path!r}")
    if policy.plan_path != "eager":
        raise ValueError(f"reference paths replace the eager plan; this policy plans on {policy.plan_path!r}")
    steps = policy.config.num_flow_steps
    if path == "hf_eager":
        def sample(ctx, noise, mask, init=None):
            return flow_sample(_hf_velocity(policy, ctx), noise, mask, init, steps)
    else:
        in_prompt = policy.normalizer.normalize_state(np.asarray(state, np.float32)) if policy.config.backbone.state_in_prompt else None
        inputs = policy.backbone.prepare([(images, instruction, in_prompt)])  # tokenised once: the model's work is what is rebuilt
        state_n, hist_n, hist_valid = policy._action_inputs(state, history)
        age = torch.tensor([float(semantic_age_s)], device=policy.device)

        def velocity(noisy_actions, token_time):
            cond = policy.backbone.encode(inputs)
            return policy.velocity(policy.action_context(cond, state_n, hist_n, hist_valid, age), noisy_actions, token_time)

        def sample(ctx, noise, mask, init=None):
            return flow_sample(velocity, noise, mask, init, steps)
    policy.sample = sample  # shadows the method on this instance only
    try:
        yield
    finally:
        del policy.sample


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
