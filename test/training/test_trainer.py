"""The two-stage trainer on synthetic episodes: it runs, saves, and resumes exactly."""

import json

import numpy as np
import pytest
import torch

from asyncvla_ros.policy.policy import AsyncVLAPolicy
from asyncvla_ros.training.config import TrainConfig
from asyncvla_ros.training.samples import ChunkSamples, Episode
from asyncvla_ros.training.sim_episodes import ArrayFrames
from asyncvla_ros.training.trainer import Trainer, lr_scale

from ..policy.conftest import INSTRUCTIONS, tiny_config


def episodes(n=3, T=12, seed=0, env_state=False, fps=None, image_px=56):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        states = np.cumsum(rng.normal(0, 0.05, (T, 6)), axis=0).astype(np.float32)
        actions = np.roll(states, -1, axis=0)
        images = rng.integers(0, 256, (T, 2, image_px, image_px, 3), dtype=np.uint8)
        env = rng.normal(0, 1, (T, 3)).astype(np.float32) if env_state else None
        out.append(Episode(states, actions, INSTRUCTIONS[i % 2], ArrayFrames(images), env, fps=fps))
    return out


def same_batch(a, b):
    for key in a:
        if key == "inputs":
            for k in a[key]:
                assert torch.equal(a[key][k], b[key][k]), k
        else:
            assert torch.equal(a[key], b[key]), key


def test_samples_pad_the_chunk_mask_the_history_and_delay_the_observation():
    eps = episodes(n=2, T=12)
    s = ChunkSamples(eps, chunk_len=8, history_len=4)
    assert len(s) == 24 and s.locate(13) == (1, 1)
    x = s.sample(13, delay=5)  # episode 1, step 1
    ep = eps[1]
    np.testing.assert_array_equal(x["state"], ep.states[1])
    np.testing.assert_array_equal(x["obs_state"], ep.states[0])  # delay clipped at the episode start
    assert x["semantic_delay"] == 1 and s.sample(20, delay=5)["semantic_delay"] == 5
    assert x["history_valid"].tolist() == [False, False, False, True]
    np.testing.assert_array_equal(x["history"][-1], ep.actions[0])
    late = s.sample(23)  # last step: one valid action, the rest repeat it
    assert late["action_valid"].tolist() == [True] + [False] * 7
    np.testing.assert_array_equal(late["actions"][-1], ep.actions[-1])
    with pytest.raises(IndexError):
        s.sample(24)


def test_state_noise_and_history_dropout_perturb_only_what_they_name(tmp_path):
    samples = ChunkSamples(episodes(n=3, T=12), chunk_len=8, history_len=4)
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)

    def batch(**cfg):
        trainer = Trainer(policy, samples, TrainConfig(batch_size=64, **cfg), tmp_path)
        trainer.policy.normalizer = samples.normalizer()
        return trainer.batch()

    plain, noisy = batch(), batch(state_noise_rad=0.5)
    np.testing.assert_array_equal(plain["actions"], noisy["actions"])  # same indices and delays drawn
    in_rad = (noisy["state"] - plain["state"]) * torch.tensor(samples.normalizer().state.std, dtype=torch.float32)
    assert 0.4 < float(in_rad.std()) < 0.6  # drawn in rad, whatever each joint's spread
    dropped = batch(history_dropout=0.5)
    rows_empty = ~dropped["history_valid"].any(dim=1)
    # Samples at step >= 4 have a full history unless dropped: about half of them lose it all.
    full_before = plain["history_valid"].all(dim=1)
    assert 0.2 < float(rows_empty[full_before].float().mean()) < 0.8
    assert torch.equal(dropped["history_valid"][~rows_empty], plain["history_valid"][~rows_empty])
    with pytest.raises(ValueError, match="history_dropout"):
        TrainConfig(history_dropout=1.5)


def test_lr_schedule_warms_up_then_decays_to_zero():
    assert lr_scale(0, 100, 10) == pytest.approx(0.1)
    assert lr_scale(10, 100, 10) == pytest.approx(1.0)
    assert lr_scale(100, 100, 10) == pytest.approx(0.0)


def test_two_stages_train_log_and_save_a_loadable_policy(tmp_path):
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    samples = ChunkSamples(episodes(), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=4, rater_steps=2, batch_size=4, checkpoint_every=2, log_every=1, warmup_steps=1)
    rater_before = {k: v.clone() for k, v in policy.rater.state_dict().items()}
    final = Trainer(policy, samples, cfg, tmp_path).fit()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {(m["stage"], m["step"]) for m in lines if "stage1/loss" in m} == {(1, s) for s in range(1, 5)}
    assert {(m["stage"], m["step"]) for m in lines if "stage2/loss" in m} == {(2, 1), (2, 2)}
    assert list((tmp_path / "tensorboard").iterdir())
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["stage1-step000002", "stage1-step000004", "stage2-step000002"]
    loaded = AsyncVLAPolicy.from_pretrained(final)
    assert loaded.normalizer.action.std != [1.0] * 6  # statistics of the data, saved with the policy
    assert any(not torch.equal(v, loaded.rater.state_dict()[k]) for k, v in rater_before.items())
    stage1 = AsyncVLAPolicy.from_pretrained(tmp_path / "checkpoints" / "stage1-step000004")
    for k, v in stage1.expert.state_dict().items():  # stage 2 leaves the action expert alone
        assert torch.equal(v, loaded.expert.state_dict()[k])


def test_a_batch_depends_on_its_step_alone_and_workers_prepare_the_same_batches(tmp_path):
    samples = ChunkSamples(episodes(env_state=True), chunk_len=8, history_len=4)
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    policy.normalizer = samples.normalizer()
    cfg = dict(steps=6, batch_size=4, history_dropout=0.3, state_noise_rad=0.1)
    inline = Trainer(policy, samples, TrainConfig(**cfg), tmp_path / "a")
    pooled = Trainer(policy, samples, TrainConfig(num_workers=2, **cfg), tmp_path / "b")
    try:
        batches = []
        for step in (0, 1, 2, 5):
            inline.step = pooled.step = step
            batches.append(inline.batch())
            same_batch(batches[-1], pooled.batch())
        inline.step = 1  # again, after other steps: the same batch
        same_batch(inline.batch(), batches[1])
        assert not torch.equal(batches[0]["actions"], batches[1]["actions"])
        assert batches[0]["env_state"].shape == (4, 3)
    finally:
        pooled.close()


def test_environment_state_head_trains_saves_and_resumes(tmp_path):
    samples = ChunkSamples(episodes(env_state=True), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=6, rater_steps=0, batch_size=3, checkpoint_every=3, log_every=1, warmup_steps=0,
                      env_state_loss_weight=1.0, lr_action_expert=1e-2)
    trainer = Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=1), samples, cfg, tmp_path / "a")
    trainer.fit()
    assert float(trainer.env_head.prefix.weight.detach().abs().sum()) > 0  # zero-initialised, then trained
    lines = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert len([m for m in lines if "stage1/env_state_loss" in m]) == 6
    mid = tmp_path / "a" / "checkpoints" / "stage1-step000003"
    assert (mid / "env_state_head.safetensors").is_file()
    resumed = Trainer.resume(mid, samples, tmp_path / "b")
    resumed.fit()
    assert torch.equal(resumed.env_head.prefix.weight, trainer.env_head.prefix.weight)
    a = AsyncVLAPolicy.from_pretrained(tmp_path / "a" / "final")
    b = AsyncVLAPolicy.from_pretrained(tmp_path / "b" / "final")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert not any("env" in name for name in a.state_dict())  # the head is not part of the policy
    with pytest.raises(ValueError, match="environment_state"):
        Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS), ChunkSamples(episodes(), 8, 4), cfg, tmp_path / "c")


def test_the_action_token_head_reads_the_velocity_heads_input_and_trains_saves_and_resumes(tmp_path):
    import torch.nn.functional as F

    from asyncvla_ros.training.scene_heads import action_token_output, last_layer_input

    samples = ChunkSamples(episodes(env_state=True), chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=4, rater_steps=0, batch_size=3, checkpoint_every=2, log_every=1, warmup_steps=0,
                      env_state_loss_weight=1.0, action_env_state_loss_weight=1.0, lr_action_expert=1e-2)
    trainer = Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=1), samples, cfg, tmp_path / "a")
    trainer.fit()
    assert float(trainer.env_head.actions.weight.detach().abs().sum()) > 0  # zero-initialised, then trained
    lines = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert len([m for m in lines if "stage1/action_env_state_loss" in m]) == 4
    resumed = Trainer.resume(tmp_path / "a" / "checkpoints" / "stage1-step000002", samples, tmp_path / "b")
    resumed.fit()
    assert torch.equal(resumed.env_head.actions.weight, trainer.env_head.actions.weight)

    # The hook hands over exactly what the velocity head maps, and is gone afterwards.
    policy, batch = trainer.policy, trainer.batch()
    cond = policy.backbone.encode(batch["inputs"])
    ctx = policy.action_context(cond, batch["state"], batch["history"], batch["history_valid"])
    noisy, time = torch.randn_like(batch["actions"]), torch.rand(batch["actions"].shape[:2])
    with action_token_output(policy.expert) as captured:
        velocity = policy.velocity(ctx, noisy, time)
    assert captured["hidden"].shape == (3, 8, policy.backbone.hidden_size)
    torch.testing.assert_close(policy.expert.velocity(captured["hidden"]), velocity)
    assert not policy.expert.velocity_out._forward_pre_hooks
    # With the action-token head on, the prefix head's logged loss is still the one on the prefix's last token.
    trainer._aux_losses = {}
    trainer._stage1_loss(policy, batch)
    with last_layer_input(policy.backbone) as prefix:
        cond = policy.backbone.encode(batch["inputs"])
    last = prefix["hidden"][torch.arange(3), cond.num_prefix_tokens - 1]
    expected = F.mse_loss(trainer.env_head.prefix(last), batch["env_state"])
    assert trainer._aux_losses["env_state_loss"] == [pytest.approx(expected.item(), rel=1e-5)]


def test_the_scene_state_heads_regress_only_the_first_values_they_are_given(tmp_path):
    import torch.nn.functional as F

    from asyncvla_ros.training.scene_heads import action_token_output, last_layer_input

    samples = ChunkSamples(episodes(env_state=True), chunk_len=8, history_len=4)  # 3 recorded values
    cfg = TrainConfig(steps=2, rater_steps=0, batch_size=3, log_every=1, warmup_steps=0, env_state_loss_weight=1.0,
                      action_env_state_loss_weight=1.0, env_state_dims=2, action_env_state_dims=1)
    trainer = Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=1), samples, cfg, tmp_path / "a")
    trainer.fit()
    assert trainer.env_head.prefix.out_features == 2 and trainer.env_head.actions.out_features == 1
    policy, batch = trainer.policy, trainer.batch()
    trainer._aux_losses = {}
    with action_token_output(policy.expert) as captured:  # what the loss's own hook sees
        trainer._stage1_loss(policy, batch)
    with last_layer_input(policy.backbone) as prefix:
        cond = policy.backbone.encode(batch["inputs"])
    last = prefix["hidden"][torch.arange(3), cond.num_prefix_tokens - 1]
    expected = F.mse_loss(trainer.env_head.prefix(last), batch["env_state"][:, :2])
    assert trainer._aux_losses["env_state_loss"] == [pytest.approx(expected.item(), rel=1e-5)]
    # The action-token head's target is the first value alone, at every token.
    per_token = trainer.env_head.actions(captured["hidden"])
    expected = F.mse_loss(per_token, batch["env_state"][:, None, :1].expand_as(per_token))
    assert trainer._aux_losses["action_env_state_loss"] == [pytest.approx(expected.item(), rel=1e-5)]
    with pytest.raises(ValueError, match="action_env_state_dims = 4: the episodes record 3"):
        Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS), samples,
                TrainConfig(action_env_state_loss_weight=1.0, action_env_state_dims=4), tmp_path / "b")


def test_the_conv_encoder_trains_on_shifted_images(tmp_path):
    from asyncvla_ros.policy.config import BackboneConfig

    config = tiny_config()
    config.backbone = BackboneConfig(image_height_px=64, image_width_px=64, vision_encoder="conv", conv_width=8)
    policy = AsyncVLAPolicy.build(config, INSTRUCTIONS)
    eps = episodes(n=2, T=10)
    for ep in eps:
        ep.frames = ArrayFrames(np.random.default_rng(1).integers(0, 256, (10, 2, 64, 64, 3), dtype=np.uint8))
    before = {k: v.clone() for k, v in policy.backbone.conv_vision.state_dict().items()}
    trainer = Trainer(policy, ChunkSamples(eps, chunk_len=8, history_len=4),
                      TrainConfig(steps=2, rater_steps=0, batch_size=4, warmup_steps=0, image_shift_px=3), tmp_path)
    assert [g["name"] for g in trainer.optimizer.param_groups][0] == "vision"
    trainer.fit()
    after = policy.backbone.conv_vision.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the vision group is the conv encoder


def test_a_fine_tune_keeps_the_policys_normaliser_unless_renormalised(tmp_path):
    import dataclasses

    first = ChunkSamples(episodes(n=2, T=12, seed=0), chunk_len=8, history_len=4)
    shifted = [dataclasses.replace(e, states=e.states + 1.0, actions=e.actions + 1.0) for e in episodes(n=2, T=12, seed=1)]
    second = ChunkSamples(shifted, chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=1, rater_steps=0, batch_size=4, warmup_steps=0)
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    Trainer(policy, first, cfg, tmp_path / "base").fit()
    base = policy.normalizer
    assert base == first.normalizer()
    Trainer(policy, second, cfg, tmp_path / "kept", keep_normalizer=True).fit()
    assert policy.normalizer == base  # the weights' units, not the new data's
    Trainer(policy, second, cfg, tmp_path / "renormalised").fit()
    assert policy.normalizer == second.normalizer() != base
    policy.normalizer = base
    policy.config.expert = dataclasses.replace(policy.config.expert, delta_actions=True)
    Trainer(policy, second, cfg, tmp_path / "delta", keep_normalizer=True).fit()
    assert (policy.normalizer.state, policy.normalizer.action) == (base.state, base.action)
    assert policy.normalizer.delta == second.normalizer(delta_actions=True).delta  # new, so from the data


def test_delta_actions_train_on_chunks_relative_to_the_state_and_round_trip_through_a_checkpoint(tmp_path):
    from asyncvla_ros.policy.checkpoint import POLICY_FILE, CheckpointError

    samples = ChunkSamples(episodes(n=2, T=12), chunk_len=8, history_len=4)
    norm = samples.normalizer(delta_actions=True)
    ep = samples.episodes[0]
    assert norm.delta is not None and len(norm.delta.mean) == 6
    chunk, state = ep.actions[2:10], ep.states[2]
    back = norm.unnormalize_chunk(norm.normalize_chunk(chunk, state), state)
    np.testing.assert_allclose(back, chunk, atol=1e-5)
    assert samples.normalizer().delta is None

    policy = AsyncVLAPolicy.build(tiny_config(delta_actions=True), INSTRUCTIONS)
    trainer = Trainer(policy, samples, TrainConfig(steps=2, rater_steps=1, batch_size=4, warmup_steps=0), tmp_path)
    final = trainer.fit()
    assert policy.normalizer.delta is not None
    from asyncvla_ros.training.trainer import collate_batch

    raw = collate_batch(trainer._source(), trainer.stage, trainer.step)
    expected = policy.normalizer.normalize_chunk(torch.as_tensor(raw["actions"]), torch.as_tensor(raw["state"]))
    torch.testing.assert_close(trainer.batch()["actions"], expected)  # relative to each sample's noise-free state
    loaded = AsyncVLAPolicy.from_pretrained(final)
    assert loaded.config.expert.delta_actions and loaded.normalizer.delta == policy.normalizer.delta
    meta = json.loads((final / POLICY_FILE).read_text())
    meta["normalization"]["delta"] = None
    (final / POLICY_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="delta"):
        AsyncVLAPolicy.from_pretrained(final)


def test_prefix_masks_train_a_policy_that_records_its_continuation_prefix(tmp_path):
    samples = ChunkSamples(episodes(n=2, T=12), chunk_len=8, history_len=4)
    plain = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    with pytest.raises(ValueError, match="continuation_prefix >= 1"):
        Trainer(plain, samples, TrainConfig(steps=1, prefix_fraction=0.5), tmp_path / "plain")
    policy = AsyncVLAPolicy.build(tiny_config(continuation_prefix=4), INSTRUCTIONS)
    final = Trainer(policy, samples, TrainConfig(steps=2, rater_steps=0, batch_size=4, warmup_steps=0, prefix_fraction=0.5),
                    tmp_path / "prefix").fit()
    assert AsyncVLAPolicy.from_pretrained(final).config.expert.continuation_prefix == 4
    with pytest.raises(ValueError, match="prefix_fraction must be in"):
        TrainConfig(prefix_fraction=1.5)


def test_the_encoder_keypoint_head_trains_the_conv_encoder_and_resumes(tmp_path):
    from asyncvla_ros.policy.config import BackboneConfig
    from asyncvla_ros.training.scene_heads import soft_argmax

    peaks = torch.full((1, 2, 5, 7), -50.0)
    peaks[0, 0, 0, 0] = peaks[0, 1, 4, 6] = 50.0  # top-left, bottom-right
    torch.testing.assert_close(soft_argmax(peaks), torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]))

    config = tiny_config()
    config.backbone = BackboneConfig(image_height_px=64, image_width_px=64, vision_encoder="conv", conv_width=8)
    eps = episodes(n=2, T=10, env_state=True)
    for ep in eps:
        ep.frames = ArrayFrames(np.random.default_rng(1).integers(0, 256, (10, 2, 64, 64, 3), dtype=np.uint8))
    samples = ChunkSamples(eps, chunk_len=8, history_len=4)
    cfg = TrainConfig(steps=4, rater_steps=0, batch_size=4, warmup_steps=0, encoder_env_state_loss_weight=1.0,
                      checkpoint_every=2, log_every=2)
    trainer = Trainer(AsyncVLAPolicy.build(config, INSTRUCTIONS), samples, cfg, tmp_path / "a")
    trainer.fit()
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("stage1/encoder_env_state_loss" in r for r in logged)
    resumed = Trainer.resume(tmp_path / "a" / "checkpoints" / "stage1-step000002", samples, tmp_path / "b")
    assert resumed.env_head.keypoints is not None
    for k, v in resumed.env_head.state_dict().items():
        assert v.shape == trainer.env_head.state_dict()[k].shape
    with pytest.raises(ValueError, match="conv vision encoder"):
        Trainer(AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS), ChunkSamples(episodes(n=2, T=10, env_state=True), 8, 4),
                TrainConfig(encoder_env_state_loss_weight=1.0), tmp_path / "c")


def test_an_episode_another_drove_takes_its_history_from_what_was_executed_and_its_targets_from_the_labels():
    T, L, K = 12, 4, 3
    actions = np.arange(T * 2, dtype=np.float32).reshape(T, 2)
    executed = -actions
    labels = np.random.default_rng(0).standard_normal((T, L, 2)).astype(np.float32)
    frames = lambda t: [np.zeros((8, 8, 3), np.uint8)]  # noqa: E731
    ep = Episode(actions.copy(), actions, "task", frames, executed=executed, chunk_labels=labels)
    sample = ChunkSamples([ep], L, K).sample(T - 1)
    np.testing.assert_array_equal(sample["history"], executed[T - 1 - K:T - 1])
    np.testing.assert_array_equal(sample["actions"], labels[T - 1])
    assert sample["action_valid"].all()  # a look-ahead label is whole, even at the episode's end
    plain = ChunkSamples([Episode(actions.copy(), actions, "task", frames)], L, K).sample(T - 1)
    np.testing.assert_array_equal(plain["history"], actions[T - 1 - K:T - 1])
    assert plain["action_valid"].sum() == 1
    with pytest.raises(ValueError, match="chunk labels are 4 steps"):
        ChunkSamples([ep], L + 1, K)
    with pytest.raises(ValueError, match="executed"):
        Episode(actions.copy(), actions, "task", frames, executed=executed[:-1])
    with pytest.raises(ValueError, match="chunk_labels"):
        Episode(actions.copy(), actions, "task", frames, chunk_labels=labels[:, :, :1])


def test_a_policy_with_the_semantic_age_input_learns_each_sample_s_delay_at_the_data_s_rate(tmp_path):
    samples = ChunkSamples(episodes(n=3, T=12, fps=20), chunk_len=8, history_len=4)
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    policy.add_semantic_age_input(8 / samples.fps)
    trainer = Trainer(policy, samples, TrainConfig(batch_size=64, steps=3, rater_steps=2, log_every=1), tmp_path)
    batch = trainer.batch()
    ages = batch["semantic_age_s"].numpy()
    assert ages.shape == (64,) and set(np.round(ages * 20).astype(int)) <= set(range(9)) and len(set(ages)) > 3
    # The age is the delay between observation and state: it enters the loss through the state token.
    before = policy.expert.age_in.weight.detach().clone()
    final = trainer.fit()
    assert not torch.equal(before, trainer.policy.expert.age_in.weight)
    assert AsyncVLAPolicy.from_pretrained(final).config.expert.semantic_age_max_s == pytest.approx(0.4)
    with pytest.raises(ValueError, match="recording rates"):
        ChunkSamples(episodes(n=1, fps=20) + episodes(n=1, fps=30), 8, 4).fps
    with pytest.raises(ValueError, match="recording rates"):
        Trainer(AsyncVLAPolicy.build(tiny_config(semantic_age_max_s=0.4), INSTRUCTIONS),
                ChunkSamples(episodes(n=2), 8, 4), TrainConfig(), tmp_path / "unknown")
