"""DAgger episodes: the policy drives through the deployed control path, the expert labels each state."""

import numpy as np
import pytest

from ..sim._support import skip_without_sim

skip_without_sim()

from asyncvla_ros.policy.default import BUNDLED_DIR  # noqa: E402
from asyncvla_ros.sim import task  # noqa: E402
from asyncvla_ros.training.dagger import EPISODES_FILE, dagger_episodes, load_episodes, save_episodes  # noqa: E402
from asyncvla_ros.training.samples import ChunkSamples  # noqa: E402


def test_the_policy_drives_the_expert_labels_and_training_sees_what_was_executed():
    steps, chunk = 12, 10
    episodes, solved = dagger_episodes(str(BUNDLED_DIR), 1, 100_000, chunk, max_steps=steps, workers=1)
    (ep,) = episodes
    assert solved == 0 and len(ep.states) == steps and ep.task in task.INSTRUCTIONS
    assert ep.chunk_labels.shape == (steps, chunk, 6) and ep.executed.shape == (steps, 6)
    assert np.array_equal(ep.actions, ep.chunk_labels[:, 0])
    # The arm went where the policy's commands (as the safety filter passed them) sent it, not where
    # the expert would have: each state is reached from the previous executed command.
    assert not np.allclose(ep.executed, ep.actions, atol=1e-3)
    assert np.all(np.abs(np.diff(ep.executed, axis=0)) <= 0.2 + 1e-6)
    assert np.abs(ep.states[1:] - ep.executed[:-1]).max() < 0.1
    # The labels are commands the arm may be given, and look ahead: a chunk moves on from its first step.
    from asyncvla_ros.sim import SimArm, SimArmConfig

    with SimArm(SimArmConfig(cameras=())) as arm:
        lower, upper = arm.joint_limits_rad
    assert np.all(np.isfinite(ep.chunk_labels)) and np.all((ep.chunk_labels >= lower) & (ep.chunk_labels <= upper))
    assert np.abs(ep.chunk_labels[:, -1] - ep.chunk_labels[:, 0]).max() > 0.01
    assert len(ep.frames(0)) == len(task.CAMERA_NAMES)
    sample = ChunkSamples(episodes, chunk, 5).sample(steps - 1)
    np.testing.assert_array_equal(sample["history"], ep.executed[steps - 6:steps - 1])
    np.testing.assert_array_equal(sample["actions"], ep.chunk_labels[steps - 1])


def test_a_folder_without_a_policy_is_refused(tmp_path):
    from asyncvla_ros.training.cli import main

    with pytest.raises(SystemExit, match="--dagger-policy"):
        main(["--dagger-policy", str(tmp_path), "--dagger-episodes", "1", "--out", str(tmp_path / "run")])


@pytest.fixture(scope="module")
def driven():
    episodes, _ = dagger_episodes(str(BUNDLED_DIR), 2, 100_010, 10, max_steps=6, workers=1)
    return episodes


def test_saved_episodes_load_back_field_for_field_and_a_damaged_folder_is_refused(driven, tmp_path):
    folder = save_episodes(driven, tmp_path / "round1", {"policy": "bundled"})
    loaded = load_episodes(folder)
    assert len(loaded) == len(driven)
    for a, b in zip(driven, loaded):
        assert a.task == b.task and a.fps == b.fps == 20.0
        for name in ("states", "actions", "env_states", "executed", "chunk_labels"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(a.frames.images, b.frames.images)
    with pytest.raises(FileExistsError):
        save_episodes(driven, folder, {})
    (folder / "episode_000001.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="episode_000001.npz"):
        load_episodes(folder)
    (folder / EPISODES_FILE).unlink()  # an interrupted save: the index is written last
    with pytest.raises(ValueError, match=EPISODES_FILE):
        load_episodes(folder)


def test_train_aggregates_saved_rounds_and_refuses_what_does_not_fit(driven, tmp_path, capsys):
    import json

    from asyncvla_ros.training.cli import main as train

    for name in ("r1", "r2"):
        save_episodes(driven, tmp_path / name, {})

    def args(out, size=112, chunk=4):
        return ["--out", str(tmp_path / out), "--image-size-px", str(size), "--chunk-len", str(chunk), "--history-len", "2",
                "--steps", "1", "--rater-steps", "0", "--batch-size", "2", "--warmup-steps", "0"]

    capsys.readouterr()
    assert train(["--dagger-data", str(tmp_path / "r1"), "--dagger-data", str(tmp_path / "r2")] + args("run")) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["episodes"] == 2 * len(driven)
    assert (tmp_path / "run" / "final").is_dir()
    with pytest.raises(SystemExit, match="wants 56 px"):
        train(["--dagger-data", str(tmp_path / "r1")] + args("run2", size=56))
    with pytest.raises(SystemExit, match="10-step chunks"):
        train(["--dagger-data", str(tmp_path / "r1")] + args("run3", chunk=12))
    with pytest.raises(SystemExit, match="--dagger-save"):
        train(["--dagger-data", str(tmp_path / "r1"), "--dagger-save", str(tmp_path / "r3")] + args("run4"))
    with pytest.raises(SystemExit, match="not empty"):  # refused before the demonstrations run
        train(["--sim-episodes", "400", "--dagger-policy", str(BUNDLED_DIR), "--dagger-save", str(tmp_path / "r1")] + args("run5"))
