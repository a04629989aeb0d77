"""Checkpoints of the trainer: a run resumes from one exactly, and old ones can be pruned. (The
data-parallel and DeepSpeed resumes are in test_data_parallel.py, the weight average's in test_ema.py.)"""

import pytest
import torch

from asyncvla_ros.policy.policy import AsyncVLAPolicy
from asyncvla_ros.training.config import TrainConfig
from asyncvla_ros.training.samples import ChunkSamples
from asyncvla_ros.training.state import read_progress
from asyncvla_ros.training.trainer import Trainer, checkpoints_by_age

from ..policy.conftest import INSTRUCTIONS, tiny_config
from .test_trainer import episodes


def test_resume_continues_from_the_same_step_and_optimizer_state(tmp_path):
    samples = ChunkSamples(episodes(), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=6, rater_steps=0, batch_size=3, checkpoint_every=3, log_every=3, warmup_steps=2)
    Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=1), samples, cfg, tmp_path / "a").fit()
    mid = tmp_path / "a" / "checkpoints" / "stage1-step000003"
    assert read_progress(mid)["step"] == 3
    resumed = Trainer.resume(mid, samples, tmp_path / "b")
    assert resumed.step == 3 and resumed.stage == 1
    state = resumed.optimizer.state_dict()["state"]
    assert state and all(float(s["step"]) == 3 for s in state.values())
    resumed.fit()
    a = AsyncVLAPolicy.from_pretrained(tmp_path / "a" / "final")
    b = AsyncVLAPolicy.from_pretrained(tmp_path / "b" / "final")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_keep_checkpoints_deletes_all_but_the_newest_after_each_save(tmp_path):
    samples = ChunkSamples(episodes(), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=3, rater_steps=2, batch_size=2, checkpoint_every=1, keep_checkpoints=2)
    (tmp_path / "checkpoints" / "notes").mkdir(parents=True)  # not a checkpoint: left alone
    Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS), samples, cfg, tmp_path).fit()
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == ["notes", "stage2-step000001", "stage2-step000002"]
    assert (tmp_path / "final" / "asyncvla_policy.json").is_file()
    # Ordered by stage, then step as a number (the names stop sorting as text past 999999 steps).
    for name in ("stage1-step1000000", "stage1-step999999", "stage2-step000001"):
        (tmp_path / "order" / name).mkdir(parents=True)
    assert [p.name for p in checkpoints_by_age(tmp_path / "order")] == ["stage1-step999999", "stage1-step1000000",
                                                                       "stage2-step000001"]
    with pytest.raises(ValueError, match="keep_checkpoints"):
        TrainConfig(keep_checkpoints=-1)
