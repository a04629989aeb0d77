"""Stage 1's weight average (--ema-decay): what checkpoints and the final policy hold, and resuming."""

import pytest
import torch
from safetensors.torch import load_file

from asyncvla_ros.policy.policy import AsyncVLAPolicy
from asyncvla_ros.training.config import TrainConfig
from asyncvla_ros.training.samples import ChunkSamples
from asyncvla_ros.training.trainer import LIVE_WEIGHTS_FILE, Trainer

from ..policy.conftest import INSTRUCTIONS, tiny_config
from .test_trainer import episodes


def expert_params(directory):
    policy = AsyncVLAPolicy.from_pretrained(directory)
    return {f"expert.{k}": v for k, v in policy.expert.named_parameters()}


def test_checkpoints_hold_the_average_of_the_weights_each_step_left(tmp_path):
    decay = 0.5
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=2)
    average = {f"expert.{k}": v.detach().clone() for k, v in policy.expert.named_parameters()}  # before step 1
    samples = ChunkSamples(episodes(), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=3, rater_steps=2, batch_size=3, checkpoint_every=1, log_every=1, warmup_steps=0,
                      lr_action_expert=1e-2, ema_decay=decay)
    final = Trainer(policy, samples, cfg, tmp_path).fit()
    for step in (1, 2, 3):
        ckpt = tmp_path / "checkpoints" / f"stage1-step{step:06d}"
        live = load_file(ckpt / LIVE_WEIGHTS_FILE)
        saved = expert_params(ckpt)
        moved = False
        for name, value in saved.items():
            assert name in live, name
            average[name] = decay * average[name] + (1 - decay) * live[name]
            torch.testing.assert_close(value, average[name], rtol=0, atol=1e-6)
            moved |= not torch.allclose(value, live[name])
        assert moved, f"step {step}: the average equals the live weights"
    # The final policy is the stage-1 average (the rater stage leaves the expert alone), with a trained rater.
    for name, value in expert_params(final).items():
        torch.testing.assert_close(value, average[name], rtol=0, atol=1e-6)
    assert not (tmp_path / "checkpoints" / "stage2-step000002" / LIVE_WEIGHTS_FILE).exists()


def test_a_resumed_run_averages_on_from_where_it_stopped(tmp_path):
    samples = ChunkSamples(episodes(), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=4, rater_steps=0, batch_size=3, checkpoint_every=2, log_every=2, warmup_steps=1,
                      lr_action_expert=1e-2, ema_decay=0.7)
    Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=1), samples, cfg, tmp_path / "a").fit()
    mid = tmp_path / "a" / "checkpoints" / "stage1-step000002"
    Trainer.resume(mid, samples, tmp_path / "b").fit()
    a = AsyncVLAPolicy.from_pretrained(tmp_path / "a" / "final").state_dict()
    b = AsyncVLAPolicy.from_pretrained(tmp_path / "b" / "final").state_dict()
    for name, value in a.items():
        assert torch.equal(value, b[name]), name
    (mid / LIVE_WEIGHTS_FILE).unlink()
    with pytest.raises(ValueError, match=LIVE_WEIGHTS_FILE):
        Trainer.resume(mid, samples, tmp_path / "c")


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan")])
def test_a_decay_outside_0_to_1_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=decay)
