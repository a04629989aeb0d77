"""Training batches as a function of (seed, stage, step), built in the loop or ahead by worker processes.

A step's global batch is the same set of samples whatever the number of data-parallel processes: every
process draws the random numbers of the whole batch (indices, semantic delays, image shifts, noises,
dropout) from the step's generator and keeps only its own contiguous rows (`BatchSource.rows`), so 2
processes x 8 samples see exactly what 1 process x 16 does, and only the kept samples are loaded.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections import deque

import numpy as np
import torch

from asyncvla_ros.policy.losses import sample_semantic_delay
from asyncvla_ros.policy.normalization import Normalizer
from asyncvla_ros.training.samples import ChunkSamples


def shard_rows(batch_size: int, rank: int, world: int) -> slice:
    """Rows of a `batch_size` global batch that process `rank` of `world` trains on (contiguous, equal).

    Raises:
        ValueError: the batch does not split evenly (DDP's gradient average is the global batch's mean
            only over equal shards), or `rank` is outside the world.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"process {rank} of {world}: expected 0 <= rank < world")
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {world} processes: "
                         f"give a multiple of {world} (--batch-size is the global batch, over all processes)")
    n = batch_size // world
    return slice(rank * n, (rank + 1) * n)


@dataclasses.dataclass
class BatchSource:
    """What building a batch on the CPU needs; data workers get it by fork."""

    samples: ChunkSamples
    backbone: torch.nn.Module  # only its `prepare` (tokenizer, image processor) runs here
    normalizer: Normalizer
    batch_size: int  # the global batch: samples per step over all processes
    chunk_len: int
    time_misalignment: bool
    history_dropout: float
    seed: int
    image_shift_px: int = 0
    rank: int = 0  # this data-parallel process
    world: int = 1  # data-parallel processes; each builds rows `shard_rows(batch_size, rank, world)`

    @property
    def rows(self) -> slice:
        return shard_rows(self.batch_size, self.rank, self.world)


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    """The generator of one step's batch draws, a function of (seed, stage, step) alone."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stage, step]).generate_state(1, np.uint64)[0]))


def collate_batch(src: BatchSource, stage: int, step: int) -> dict:
    """This process's rows of the raw batch of (stage, step) as numpy arrays: prepared backbone inputs,
    unnormalised state, actions and history with their masks, the scene state where recorded, and the
    unit noises and dropout draws the trainer scales (see `Trainer.batch`)."""
    g = step_generator(src.seed, stage, step)
    B, rows = src.batch_size, src.rows
    idx = torch.randint(0, len(src.samples), (B,), generator=g)
    if src.time_misalignment:
        delays = sample_semantic_delay(B, src.chunk_len, g)
    else:
        delays = torch.zeros(B, dtype=torch.long)
    raw = [src.samples.sample(int(i), int(d)) for i, d in zip(idx[rows], delays[rows])]
    if src.image_shift_px:
        shifts = torch.randint(0, 2 * src.image_shift_px + 1, (B, len(raw[0]["images"]), 2), generator=g)[rows].numpy()
        for r, offsets in zip(raw, shifts):
            r["images"] = [random_shift(img, src.image_shift_px, dy, dx) for img, (dy, dx) in zip(r["images"], offsets)]
    in_prompt = src.backbone.config.state_in_prompt
    obs = [(r["images"], r["task"], src.normalizer.normalize_state(r["obs_state"]) if in_prompt else None) for r in raw]
    stack = lambda key: np.stack([r[key] for r in raw])  # noqa: E731
    out = {"inputs": {k: v.numpy() for k, v in src.backbone.prepare(obs).items()}}
    for key in ("state", "actions", "action_valid", "history", "history_valid", "semantic_delay"):
        out[key] = stack(key)
    if all("env_state" in r for r in raw):
        out["env_state"] = stack("env_state")
    out["state_noise"] = torch.randn((B, *out["state"].shape[1:]), generator=g)[rows].numpy()
    out["history_noise"] = torch.randn((B, *out["history"].shape[1:]), generator=g)[rows].numpy()
    out["history_keep"] = (torch.rand(B, generator=g) >= src.history_dropout)[rows].numpy()
    return out


def random_shift(image: np.ndarray, pad: int, dy: int, dx: int) -> np.ndarray:
    """`image` (H, W, C) padded by `pad` pixels (edge replicated) and cropped back at offset (dy, dx)."""
    h, w = image.shape[:2]
    return np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")[dy:dy + h, dx:dx + w]


_worker_source: BatchSource | None = None  # set before the data workers fork


def _collate_in_worker(stage: int, step: int) -> dict:
    return collate_batch(_worker_source, stage, step)


class BatchPrefetcher:
    """Batches from `num_workers` forked processes, keeping `2 x num_workers` batches in flight.

    Args:
        source: what the workers build batches from (inherited by fork, with the frames held in memory,
            without copying them).
        num_workers: worker processes (>= 1).
    """

    def __init__(self, source: BatchSource, num_workers: int) -> None:
        global _worker_source
        _worker_source = source
        self.num_workers = num_workers
        self._pool = multiprocessing.get_context("fork").Pool(num_workers, initializer=torch.set_num_threads, initargs=(1,))
        self._pending: deque = deque()

    def get(self, stage: int, step: int, total: int) -> dict:
        """The batch of (stage, step); queues the following steps of the stage, up to `total`."""
        key = (stage, step)
        if self._pending and self._pending[0][0] != key:
            self._pending.clear()  # the stage changed (or the run jumped): start the queue again
        next_step = self._pending[-1][0][1] + 1 if self._pending else step
        while len(self._pending) < 2 * self.num_workers and next_step < total:
            self._pending.append(((stage, next_step), self._pool.apply_async(_collate_in_worker, (stage, next_step))))
            next_step += 1
        got, result = self._pending.popleft()
        if got != key:  # a bug in the queue above, not an input error
            raise RuntimeError(f"prefetched batch {got}, expected {key}")
        return result.get()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
        self._pending.clear()
