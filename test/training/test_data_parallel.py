"""Data-parallel training: `asyncvla-ros train` in 2 CPU processes (torchrun, gloo), each on half of every
global batch, gives the losses, optimizer moments and weights of 1 process with the whole batch; so
does DeepSpeed ZeRO-2 (accelerate launch with config/accelerate/zero2.yaml), and a ZeRO-2 run resumed
from its checkpoint gives the uninterrupted run's.

The run covers what could make a shard differ from its part of the combined batch: the batch's own
draws (indices, delays, image shifts, state and history noise, history dropout), Alg. 2's draws
inside the loss, the scene-state head, and the rater's mean over valid tokens (episodes short enough
that chunks run past their end). Float32 sums over 2 x 2 samples and over 4 round differently, so
values agree to about 1e-7 relative, not bitwise; a process drawing the wrong rows, drawing its own
noise, or missing the gradient average moves them by 1e-3 or more.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from asyncvla_ros.training.dagger import save_episodes

from .test_trainer import episodes

if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch is built without torch.distributed / gloo", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180  # per run; each takes about 15 s on 2 cores
TRAIN = ["--image-size-px", "56", "--chunk-len", "8", "--history-len", "4", "--hidden-size", "32", "--layers", "2",
         "--vision-hidden-size", "16", "--steps", "4", "--rater-steps", "2", "--batch-size", "4", "--warmup-steps", "0",
         "--log-every", "1", "--checkpoint-every", "100", "--env-state-loss-weight", "0.5", "--image-shift-px", "2",
         "--state-noise-rad", "0.05", "--history-dropout", "0.3", "--sfm-fraction", "0.2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_train(launcher: list[str], data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`asyncvla-ros train` under `launcher`, on the episodes in `data`, with TRAIN and `extra`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    cmd = [*launcher, "-m", "asyncvla_ros.cli", "train", "--dagger-data", str(data), "--out", str(out), *TRAIN, *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def train(launcher: list[str], data: Path, out: Path, *extra: str) -> dict:
    """Run `asyncvla-ros train` under `launcher`; returns the report process 0 printed."""
    done = run_train(launcher, data, out, *extra)
    assert done.returncode == 0, f"{' '.join(done.args)}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout[done.stdout.index("{"):])


def losses(run: Path) -> dict:
    """(stage, step, name) -> every logged loss of the run (one per step: --log-every 1)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {(r["stage"], r["step"], k): v for r in rows for k, v in r.items() if k.endswith("loss")}


def tensors(run: Path, pattern: str) -> dict:
    return {f"{f.relative_to(run)}:{k}": v.float() for f in sorted(run.glob(pattern)) for k, v in load_file(f).items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("data_parallel")
    data = save_episodes(episodes(n=3, T=10, env_state=True, fps=20), root / "data", {"synthetic": True})
    t0 = time.perf_counter()
    # Process 0 and 1 each prepare their rows in a data worker: the sharded prefetch path too.
    two = train([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                 "--master-port", str(free_port())], data, root / "two", "--num-workers", "1")
    t1 = time.perf_counter()
    one = train([sys.executable], data, root / "one")
    print(f"2 processes {t1 - t0:.1f} s, 1 process {time.perf_counter() - t1:.1f} s")
    return root, two, one


def assert_same_losses(root: Path, run: str) -> None:
    a, b = losses(root / "one"), losses(root / run)
    assert sorted({k[:2] for k in a if k[2].endswith("/loss")}) == [(1, s) for s in range(1, 5)] + [(2, 1), (2, 2)]
    assert a.keys() == b.keys()
    keys = sorted(a)
    np.testing.assert_allclose([b[k] for k in keys], [a[k] for k in keys], rtol=1e-5, err_msg=str(keys))
    print(run, "loss rel. diff", max(abs(b[k] - a[k]) / abs(a[k]) for k in keys))


def assert_same_weights(root: Path, run: str) -> None:
    # Adam moves a parameter whose gradient is rounding noise (a key bias) by up to a few percent of a
    # step, here 1e-4: about 2e-6; a wrong batch moves weights by a whole step.
    head = "checkpoints/stage1-step000004/env_state_head.safetensors"  # stage 1's last
    x = tensors(root / "one", "final/**/*.safetensors") | tensors(root / "one", head)
    y = tensors(root / run, "final/**/*.safetensors") | tensors(root / run, head)
    assert x.keys() == y.keys() and any("backbone" in k for k in x) and any("env_state_head" in k for k in x)
    # The VLM's output head is neither used nor trained, and differs between two builds of the same seed.
    worst = max((float((x[k] - y[k]).abs().max()), k) for k in x if not k.endswith("lm_head.weight"))
    print(run, "weights max abs diff", worst)
    assert worst[0] < 1e-5, worst


def test_two_processes_train_what_one_does_with_the_combined_batch(runs):
    root, two, one = runs
    assert (two["processes"], two["engine"], one["processes"], one["engine"]) == (2, "MULTI_CPU", 1, "NO")
    assert_same_losses(root, "two")

    # The optimizer moments are the averaged gradients themselves (Adam's step hides a scale error).
    for pattern in ("checkpoints/stage1-*/trainer_state.safetensors", "checkpoints/stage2-*/trainer_state.safetensors"):
        x, y = tensors(root / "one", pattern), tensors(root / "two", pattern)
        assert x.keys() == y.keys() and x
        for k in x:
            torch.testing.assert_close(y[k], x[k], rtol=1e-4, atol=1e-9, msg=lambda m, k=k: f"{k}: {m}")
    assert_same_weights(root, "two")


def zero2(*options: str) -> list[str]:
    """`accelerate launch` of config/accelerate/zero2.yaml, the 3B model's engine, on 2 processes."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "config/accelerate/zero2.yaml"),
            "--num_processes", "2", "--main_process_port", str(free_port()), *options]


@pytest.fixture(scope="module")
def zero2_run(runs):
    """The DeepSpeed ZeRO-2 run in float32, with a checkpoint every 2 steps (the run is the same)."""
    root, _, _ = runs
    return train(zero2("--mixed_precision", "no"), root / "data", root / "zero2", "--device", "cpu", "--checkpoint-every", "2")


def test_deepspeed_zero2_in_two_processes_trains_what_one_does_with_the_combined_batch(runs, zero2_run):
    """zero2.yaml as given to `accelerate launch`, on DeepSpeed's CPU accelerator: ZeRO-2 splits the
    optimizer moments and gradients between the processes, applies the clipping itself and steps inside
    `accelerator.backward`; none of that may change the run."""
    root, _, _ = runs
    assert (zero2_run["processes"], zero2_run["engine"]) == (2, "DEEPSPEED")
    assert_same_losses(root, "zero2")
    assert_same_weights(root, "zero2")


def test_a_deepspeed_zero2_run_resumes_where_its_checkpoint_left_off(runs, zero2_run):
    """ZeRO holds the optimizer moments and float32 master weights in parts, one per process; each
    process saves and loads its own (DeepSpeed's checkpoint, beside the policy). A resumed run then
    gives the uninterrupted run's losses and weights; a run with another number of processes, or
    none under DeepSpeed, is refused with what to do instead."""
    root, _, _ = runs
    mid = root / "zero2" / "checkpoints" / "stage1-step000002"
    parts = sorted(p.name for p in (mid / "deepspeed" / "state").glob("*optim_states.pt"))
    assert len(parts) == 2, parts
    assert json.loads((mid / "trainer_state.json").read_text())["deepspeed_processes"] == 2
    train(zero2("--mixed_precision", "no"), root / "data", root / "zero2_resumed", "--device", "cpu", "--resume", str(mid))
    a, b = losses(root / "zero2"), losses(root / "zero2_resumed")
    assert sorted({k[:2] for k in b}) == [(1, 3), (1, 4), (2, 1), (2, 2)]
    for k in b:
        assert abs(b[k] - a[k]) <= 1e-6 * abs(a[k]), (k, a[k], b[k])
    x, y = tensors(root / "zero2", "final/**/*.safetensors"), tensors(root / "zero2_resumed", "final/**/*.safetensors")
    assert x.keys() == y.keys()
    worst = max((float((x[k] - y[k]).abs().max()), k) for k in x if not k.endswith("lm_head.weight"))  # (as above)
    print("resumed ZeRO-2 run: weights max abs diff", worst)
    assert worst[0] < 1e-6, worst

    done = run_train([sys.executable], root / "data", root / "zero2_one", "--resume", str(mid))
    assert done.returncode != 0 and "in 2 parts" in done.stderr and "--num_processes 2" in done.stderr, done.stderr[-2000:]
    assert not (root / "zero2_one" / "final").exists()


def test_deepspeed_zero2_as_shipped_trains_in_bf16_and_writes_a_policy_that_plans(runs):
    """zero2.yaml's bf16: DeepSpeed casts the weights themselves to bf16 (float32 masters in the optimizer),
    unlike DDP's autocast, so every module the losses call must take bf16 inputs: here with every
    training-only part the default's recipe uses (the conv encoder's keypoint head, the action tokens'
    scene-state head, the weight average, gradient checkpointing, the semantic-age input)."""
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    from ..policy.conftest import INSTRUCTIONS

    root, _, _ = runs
    data = save_episodes(episodes(n=3, T=10, env_state=True, fps=20, image_px=64), root / "data64", {"synthetic": True})
    recipe = ["--vision-encoder", "conv", "--image-size-px", "64", "--encoder-env-state-loss-weight", "1", "--action-env-state-loss-weight", "1",
              "--ema-decay", "0.9", "--gradient-checkpointing", "--semantic-age-input"]
    bf16 = train(zero2(), data, root / "bf16", "--device", "cpu", *recipe, "--checkpoint-every", "2")
    assert (bf16["engine"], bf16["config"]["mixed_precision"]) == ("DEEPSPEED", "bf16")
    logged = losses(root / "bf16")
    assert {k[2] for k in logged} == {"stage1/loss", "stage1/env_state_loss", "stage1/encoder_env_state_loss",
                                      "stage1/action_env_state_loss", "stage2/loss"}
    assert all(np.isfinite(v) for v in logged.values()), logged
    # The weights DeepSpeed trained, and the policy saved, are bf16 (a policy loads them in its own dtype).
    assert {v.dtype for v in load_file(root / "bf16" / "final" / "action_model.safetensors").values()} == {torch.bfloat16}
    policy = AsyncVLAPolicy.from_pretrained(root / "bf16" / "final", device="cpu")
    e, vision = policy.config.expert, policy.config.backbone
    images = [np.zeros((vision.image_height_px, vision.image_width_px, 3), np.uint8) for _ in vision.camera_names]
    plan = policy.act(policy.encode(images, INSTRUCTIONS[0]), np.zeros(e.state_dim, np.float32), semantic_age_s=0.1)
    assert plan.actions.shape == (e.chunk_len, e.action_dim) and np.isfinite(plan.actions).all()

    # Resumed in bf16 from stage 1's middle: the same losses and weights. The float32 master weights
    # come from DeepSpeed's checkpoint, the float32 weight average from its own file (the checkpoint's
    # bf16 policy is only their rounding: stage 2's loss, on the average, moved by 1 % without it).
    train(zero2(), data, root / "bf16_resumed", "--device", "cpu", *recipe, "--resume",
          str(root / "bf16" / "checkpoints" / "stage1-step000002"))
    resumed = losses(root / "bf16_resumed")
    assert sorted({k[:2] for k in resumed}) == [(1, 3), (1, 4), (2, 1), (2, 2)]
    for k in resumed:
        assert abs(resumed[k] - logged[k]) <= 1e-6 * abs(logged[k]), (k, logged[k], resumed[k])
    x, y = tensors(root / "bf16", "final/**/*.safetensors"), tensors(root / "bf16_resumed", "final/**/*.safetensors")
    assert x.keys() == y.keys()
    assert max(float((x[k] - y[k]).abs().max()) for k in x if not k.endswith("lm_head.weight")) == 0


def test_the_shards_of_a_batch_and_of_its_loss_draws_are_the_rows_of_the_combined_one():
    import dataclasses

    from asyncvla_ros.policy.losses import noise_chunks
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.batches import BatchSource, collate_batch
    from asyncvla_ros.policy.losses import noise_chunk_rows as noise_rows
    from asyncvla_ros.training.samples import ChunkSamples

    from ..policy.conftest import INSTRUCTIONS, tiny_config

    samples = ChunkSamples(episodes(n=3, T=10, env_state=True), chunk_len=8, history_len=4)
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS)
    whole = BatchSource(samples, policy.backbone, samples.normalizer(), 6, 8, True, 0.3, 0, image_shift_px=2)
    full = collate_batch(whole, 1, 5)
    parts = [collate_batch(dataclasses.replace(whole, rank=r, world=3), 1, 5) for r in range(3)]
    for key in full:
        if key != "inputs":
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), full[key], err_msg=key)
    np.testing.assert_array_equal(np.concatenate([p["inputs"]["pixel_values"] for p in parts]), full["inputs"]["pixel_values"])

    actions = torch.randn(6, 8, 6)
    draw = dict(sfm_fraction=0.3, prefix_fraction=0.3, max_prefix=3)
    combined = noise_chunks(actions, torch.Generator().manual_seed(1), **draw)
    # Each process holds its own generator, in the same state.
    rows = [noise_rows(actions[r:r + 2], torch.Generator().manual_seed(1), slice(r, r + 2), 6, **draw) for r in (0, 2, 4)]
    for field in ("noisy_actions", "target_velocity", "mask", "token_time"):
        torch.testing.assert_close(torch.cat([getattr(n, field) for n in rows]), getattr(combined, field), rtol=0, atol=0)


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    from asyncvla_ros.training.batches import shard_rows

    assert [shard_rows(8, r, 2) for r in (0, 1)] == [slice(0, 4), slice(4, 8)]
    with pytest.raises(ValueError, match="give a multiple of 4"):
        shard_rows(6, 0, 4)


ONCE_FOR_ALL = """
import json, sys
import numpy as np
from asyncvla_ros.training.data_parallel import new_accelerator, once_for_all
acc = new_accelerator("cpu")
def make():
    with open(sys.argv[1], "a") as marks:
        marks.write(f"{acc.process_index}\\n")
    return [np.arange(5) * 2, "episodes"]
got = once_for_all(acc, make)
# A file per process: two processes printing to one pipe can interleave their lines.
with open(f"{sys.argv[2]}/process{acc.process_index}.json", "w") as report:
    json.dump({"process": acc.process_index, "got": [got[0].tolist(), got[1]]}, report)
acc.end_training()  # leave the process group, as `train` does: exiting inside it can abort in gloo's teardown
"""


def test_what_every_process_needs_is_made_once_by_process_0_and_handed_to_the_others(tmp_path):
    marks = tmp_path / "made_by"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "--no-python", sys.executable, "-c", ONCE_FOR_ALL, str(marks), str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [json.loads((tmp_path / f"process{p}.json").read_text()) for p in (0, 1)]
    assert reports == [{"process": p, "got": [[0, 2, 4, 6, 8], "episodes"]} for p in (0, 1)]
    assert marks.read_text() == "0\n"  # made by process 0 alone


def test_optimizer_state_that_a_run_cannot_take_is_refused_with_what_to_do(tmp_path):
    from asyncvla_ros.training.state import load_trainer_state, save_trainer_state

    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight])
    weight.grad = torch.ones(3)
    optimizer.step()
    generator = torch.Generator()
    torch_state, zero_state = tmp_path / "ddp", tmp_path / "zero2"
    for path in (torch_state, zero_state):
        path.mkdir()
    save_trainer_state(torch_state, 1, 5, optimizer, generator, {})
    save_trainer_state(zero_state, 1, 5, None, generator, {}, deepspeed_processes=4)

    with pytest.raises(ValueError, match="which DeepSpeed cannot take"):
        load_trainer_state(torch_state, None, generator, deepspeed_processes=2)
    with pytest.raises(ValueError, match="in 4 parts.*this run has 2.*--num_processes 4"):
        load_trainer_state(zero_state, None, generator, deepspeed_processes=2)
    with pytest.raises(ValueError, match="in 4 parts.*not under DeepSpeed"):
        load_trainer_state(zero_state, optimizer, generator)
    assert load_trainer_state(zero_state, None, generator, deepspeed_processes=4)["step"] == 5
    assert load_trainer_state(torch_state, optimizer, generator)["step"] == 5
