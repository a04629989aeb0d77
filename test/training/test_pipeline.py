"""The whole pipeline on CPU: demonstrations -> LeRobotDataset -> both training stages -> checkpoint
-> reload -> one closed-loop episode in the sim."""

import importlib.util
import json

import pytest

from ..sim._support import skip_without_sim

skip_without_sim()
if importlib.util.find_spec("lerobot") is None:
    pytest.skip("lerobot is not installed (scripts/setup_env.sh installs it)", allow_module_level=True)


def report_episodes(root) -> int:
    info = json.loads((root / "meta" / "info.json").read_text())
    return int(info["total_episodes"])


def test_demos_train_reload_and_evaluate(tmp_path, capsys):
    from asyncvla_ros.data.record import record_demos
    from asyncvla_ros.evaluation.closed_loop import EvalConfig, evaluate
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.cli import main as train

    report = record_demos(tmp_path / "demos", episodes=2, seed=0, image_size_px=56)
    assert report["episodes_saved"] >= 1
    args = ["--dataset", str(tmp_path / "demos"), "--out", str(tmp_path / "run"), "--image-size-px", "56",
            "--steps", "3", "--rater-steps", "2", "--batch-size", "2", "--warmup-steps", "1", "--checkpoint-every", "2",
            "--chunk-len", "8", "--history-len", "4", "--semantic-age-input"]
    with pytest.raises(SystemExit, match="time-misalignment"):
        train(args + ["--no-time-misalignment"])
    with pytest.raises(SystemExit, match="--renormalize"):
        train(args + ["--renormalize"])  # a new policy has no units of its own to keep
    sparse = ["--dataset", str(tmp_path / "demos"), "--out", str(tmp_path / "sparse"), "--sim-episodes", "1",
              "--sim-image-stride"]
    with pytest.raises(SystemExit, match="time-misalignment"):
        train(sparse + ["2", "--no-time-misalignment"])  # refused before any episode runs
    with pytest.raises(SystemExit, match=">= 1"):
        train(sparse + ["0"])
    assert train(args) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    assert report["episodes"] == report_episodes(tmp_path / "demos") and report["final"].endswith("final")
    policy = AsyncVLAPolicy.from_pretrained(tmp_path / "run" / "final")
    assert tuple(policy.config.backbone.camera_names) == ("front", "wrist")
    assert policy.config.expert.chunk_len == 8
    assert policy.config.expert.semantic_age_max_s == pytest.approx(8 / 20)  # one chunk at the dataset's 20 fps
    (result,) = evaluate(policy, [100], EvalConfig(max_steps=5))
    assert result.steps == 5

    # Starting from a bare Qwen2.5-VL directory (a downloaded model has this layout): its weights and
    # tokenizer are used, the rest of the policy is shaped by the dataset.
    policy.backbone.save_pretrained(tmp_path / "qwen")
    args = ["--dataset", str(tmp_path / "demos"), "--out", str(tmp_path / "run2"), "--init", str(tmp_path / "qwen"),
            "--image-size-px", "56", "--steps", "1", "--rater-steps", "0", "--batch-size", "2", "--warmup-steps", "0"]
    assert train(args) == 0
    tuned = AsyncVLAPolicy.from_pretrained(tmp_path / "run2" / "final")
    assert tuned.config.model_id.startswith("asyncvla-qwen-")
    emb = "vlm.language_model.embed_tokens.weight"
    assert tuned.backbone.state_dict()[emb].shape == policy.backbone.state_dict()[emb].shape

    # A trained absolute-action policy fine-tuned into a delta one: its chunk statistics are the data's deltas.
    args = ["--dataset", str(tmp_path / "demos"), "--out", str(tmp_path / "run3"), "--init", str(tmp_path / "run" / "final"),
            "--delta-actions", "--steps", "1", "--rater-steps", "0", "--batch-size", "2", "--warmup-steps", "0"]
    assert train(args) == 0
    delta = AsyncVLAPolicy.from_pretrained(tmp_path / "run3" / "final")
    assert delta.config.expert.delta_actions and delta.normalizer.delta is not None
    assert delta.config.expert.chunk_len == 8 and policy.normalizer.delta is None
    # A fine-tune is a model of its own: the nodes tell semantic features apart by model id.
    assert delta.config.model_id != policy.config.model_id


def test_training_on_two_datasets_uses_every_episode_and_refuses_mismatched_cameras(tmp_path, capsys):
    from asyncvla_ros.data.record import record_demos
    from asyncvla_ros.training.cli import main as train

    record_demos(tmp_path / "a", episodes=1, seed=0, image_size_px=56)
    record_demos(tmp_path / "b", episodes=1, seed=5, image_size_px=56)
    common = ["--image-size-px", "56", "--steps", "1", "--rater-steps", "0", "--batch-size", "2", "--warmup-steps", "0",
              "--chunk-len", "4", "--history-len", "2", "--state-noise-rad", "0.05", "--history-dropout", "0.5"]
    assert train(["--dataset", str(tmp_path / "a"), "--dataset", str(tmp_path / "b"), "--out", str(tmp_path / "run")] + common) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    assert report["episodes"] == report_episodes(tmp_path / "a") + report_episodes(tmp_path / "b")
    assert report["config"]["history_dropout"] == 0.5
    info = json.loads((tmp_path / "b" / "meta" / "info.json").read_text())
    info["features"]["observation.images.side"] = info["features"]["observation.images.wrist"]
    (tmp_path / "b" / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(SystemExit, match="cameras"):
        train(["--dataset", str(tmp_path / "a"), "--dataset", str(tmp_path / "b"), "--out", str(tmp_path / "run2")] + common)


def test_sim_episodes_in_memory_are_the_recorded_demonstrations(tmp_path):
    import numpy as np

    from asyncvla_ros.data.load import load_dataset
    from asyncvla_ros.data.record import record_demos
    from asyncvla_ros.sim.task import ENVIRONMENT_STATE_NAMES
    from asyncvla_ros.training.lerobot_episodes import camera_names, episodes_from_lerobot
    from asyncvla_ros.training.sim_episodes import sim_episodes

    record_demos(tmp_path / "demos", episodes=2, seed=3, image_size_px=56)
    dataset = load_dataset(tmp_path / "demos")
    recorded = episodes_from_lerobot(dataset, camera_names(dataset), (56, 56))
    in_memory, failed = sim_episodes(2, seed=3, image_size_px=56, workers=1)
    assert failed == [] and len(in_memory) == len(recorded) == 2
    for a, b in zip(recorded, in_memory):
        assert a.task == b.task
        np.testing.assert_array_equal(a.states, b.states)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.env_states, b.env_states)
        assert a.env_states.shape[1] == len(ENVIRONMENT_STATE_NAMES)
        for t in (0, len(a.states) - 1):
            for x, y in zip(a.frames(t), b.frames(t)):
                np.testing.assert_array_equal(x, y)  # PNG round trip is lossless


def test_a_sparsely_rendered_demonstration_is_the_same_episode_and_samples_read_the_newest_rendered_images():
    import numpy as np

    from asyncvla_ros.training.samples import ChunkSamples
    from asyncvla_ros.training.sim_episodes import sim_episodes

    (every,), _ = sim_episodes(1, seed=5, image_size_px=16)
    (sparse,), failed = sim_episodes(1, seed=5, image_size_px=16, image_stride=3)
    assert failed == [] and sparse.task == every.task and sparse.image_stride == 3
    np.testing.assert_array_equal(sparse.states, every.states)  # rendering does not touch the physics
    np.testing.assert_array_equal(sparse.actions, every.actions)
    T = len(every.states)
    assert len(sparse.frames.images) == -(-T // 3)  # steps 0, 3, 6, ...
    for t in (0, 3, 3 * ((T - 1) // 3)):
        for x, y in zip(sparse.frames(t), every.frames(t)):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(IndexError, match="not rendered"):
        sparse.frames(4)
    samples = ChunkSamples([sparse], chunk_len=4, history_len=2)
    for t, delay, obs_t in ((10, 0, 9), (10, 2, 6), (9, 0, 9), (2, 5, 0)):
        x = samples.sample(t, delay)
        assert x["semantic_delay"] == t - obs_t
        np.testing.assert_array_equal(x["env_state"], sparse.env_states[obs_t])
        np.testing.assert_array_equal(x["images"][0], every.frames(obs_t)[0])
        np.testing.assert_array_equal(x["state"], every.states[t])  # the state is always the step's own
    with pytest.raises(ValueError, match="image_stride"):
        sim_episodes(1, seed=5, image_size_px=16, image_stride=0)


def test_a_displaced_demonstration_moves_the_cube_once_in_its_window_and_the_expert_still_solves_it():
    import numpy as np

    from asyncvla_ros.data.record import RecordConfig
    from asyncvla_ros.sim.disturbance import DISPLACE_MIN_MOVE_M
    from asyncvla_ros.training.sim_episodes import sim_episodes

    (plain,), _ = sim_episodes(1, seed=5, image_size_px=16)
    (moved,), failed = sim_episodes(1, seed=5, image_size_px=16, displace_fraction=1.0)
    assert failed == [] and moved.task == plain.task
    steps = np.linalg.norm(np.diff(moved.env_states[:, :2], axis=0), axis=1)  # cube xy change per tick
    jumps = np.flatnonzero(steps >= DISPLACE_MIN_MOVE_M)
    assert len(jumps) == 1  # moved once, then only pushed or carried
    first, last = (round(w * 20) for w in RecordConfig().displace_window_s)
    assert first <= jumps[0] + 1 <= last
    # Up to the move it is the plain episode: the displacement draws from a stream of its own.
    np.testing.assert_array_equal(moved.states[:jumps[0] + 1], plain.states[:jumps[0] + 1])
    # The expert went on to where the cube is now (it was kept, so it succeeded): the episode's last
    # cube position is the instructed area, far from where the cube was put down.
    assert np.linalg.norm(moved.env_states[-1, :2] - moved.env_states[jumps[0] + 1, :2]) > 0.05


def test_dart_noise_moves_the_arm_off_the_expert_path_and_keeps_the_expert_labels():
    import numpy as np

    from asyncvla_ros.training.sim_episodes import sim_episodes

    (plain,), _ = sim_episodes(1, seed=5, image_size_px=16)
    (noisy,), failed = sim_episodes(1, seed=5, image_size_px=16, action_noise_std_rad=0.01)
    (again,), _ = sim_episodes(1, seed=5, image_size_px=16, action_noise_std_rad=0.01)
    assert failed == [] and noisy.task == plain.task
    np.testing.assert_array_equal(noisy.states, again.states)  # the noise is drawn from the episode's seed
    np.testing.assert_array_equal(noisy.states[0], plain.states[0])  # same scene, same start
    assert not np.array_equal(noisy.states[:20], plain.states[:20])
    # Executed = recorded + noise on the arm joints: the arm's next state is further from the recorded
    # target than servo lag alone puts it.
    lag = lambda ep: np.abs(ep.states[1:, :5] - ep.actions[:-1, :5]).mean()  # noqa: E731
    assert lag(noisy) > lag(plain) * 1.05
    from asyncvla_ros.data.record import RecordConfig

    with pytest.raises(ValueError, match="action_noise_std_rad"):
        RecordConfig(action_noise_std_rad=-0.1)
