"""The two-stage AsyncVLA trainer.

Stage 1 trains backbone and action expert with the unified SFM/AFM loss (Alg. 2), history
conditioning (Gaussian-perturbed ground-truth history) and time-misalignment sampling; per-group
learning rates (vision encoder 2e-5, language model and action expert 1e-4), AdamW with weight decay 0,
linear warm-up then cosine decay. Stage 2 trains the confidence rater alone on the frozen model with
the Eq. 6 pseudo-labels. Checkpoints are the policy's own save format plus the optimizer state (under
DeepSpeed ZeRO, the engine's own checkpoint of it, one part per process), and a run resumes from one at
the same step with the same optimizer state and random draws.

Beyond the paper, for small policies trained from scratch (all off by default): an auxiliary loss on
the privileged scene state where the data records it (`env_state_loss_weight`), extra all-masked
samples (`sfm_fraction`), state noise, whole-history dropout and a moving average of the weights
(`ema_decay`, ema.py). Batches are a function of (seed, stage, step), so `num_workers` processes can
prepare them ahead of the optimizer.

The loop runs under an `accelerate.Accelerator`: a plain process, or data-parallel processes started by
`accelerate launch` / `torchrun` that each train on their rows of the same global batch and give the
same losses and weights as one process with the whole batch (data_parallel.py). Process 0 alone writes
checkpoints, logs and the progress bar.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from asyncvla_ros.policy.normalization import FeatureStats
from asyncvla_ros.policy.training import Shard, flow_matching_loss, rater_training_loss
from asyncvla_ros.training import data_parallel as dp
from asyncvla_ros.training.batches import BatchPrefetcher, BatchSource, collate_batch, shard_rows
from asyncvla_ros.training.batches import random_shift, step_generator  # noqa: F401 (imported from here by callers)
from asyncvla_ros.training.config import TrainConfig, train_config_from_saved
from asyncvla_ros.training.ema import WeightAverage
from asyncvla_ros.training.samples import ChunkSamples
from asyncvla_ros.training.scene_heads import KEYPOINT_STAGE, SceneStateHeads, flow_and_scene_state_losses
from asyncvla_ros.training.state import DEEPSPEED_DIR, DEEPSPEED_TAG, load_trainer_state, save_trainer_state

logger = logging.getLogger(__name__)

ENV_HEAD_FILE = "env_state_head.safetensors"  # the auxiliary head, beside a checkpoint (training only)
# With ema_decay, a stage-1 checkpoint's policy is the weight average; the optimised weights are kept here.
LIVE_WEIGHTS_FILE = "live_weights.safetensors"
# ... and, where the average is finer than the weights (float32 under DeepSpeed's bf16), the average itself.
AVERAGE_WEIGHTS_FILE = "average_weights.safetensors"


def lr_scale(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """Args: the policy to train, the training samples, the config, and the run directory (checkpoints,
    logs). A fresh run replaces the policy's normaliser by the data's statistics; with `keep_normalizer`
    (a fine-tuned policy, whose weights were learnt in its own units) it keeps the policy's, adding only
    the data's chunk-delta statistics where a policy is fine-tuned into delta actions. `accelerator`:
    the run's (`data_parallel.new_accelerator`); None makes one from `config.device` and
    `config.mixed_precision`.

    Raises:
        ValueError: a config the policy or the data cannot train with, or a batch that does not split
            evenly over the processes.
    """

    def __init__(self, policy, samples: ChunkSamples, config: TrainConfig, out_dir: str | Path,
                 keep_normalizer: bool = False, accelerator=None) -> None:
        self.accelerator = accelerator or dp.new_accelerator(config.device, config.mixed_precision)
        acc = self.accelerator
        self.device = dp.process_device(acc, config.device)
        # This process's samples of each step's global batch.
        self.shard = Shard(shard_rows(config.batch_size, acc.process_index, acc.num_processes), config.batch_size,
                           acc.num_processes, lambda t: acc.reduce(t, "sum"))
        self.policy = policy.to(self.device)
        self.keep_normalizer = keep_normalizer
        self.samples = samples
        self.config = config
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # Draws inside the loss (flow-matching noise, masks) use this generator, on the training device.
        # Every process holds it in the same state: the draws are made for the global batch (data_parallel.py).
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.stage, self.step = 1, 0
        self.env_state_stats: FeatureStats | None = samples.env_state_stats() if samples.has_env_state else None
        # A policy that reads its semantics' age learns it from each sample's delay at the data's rate.
        self._fps = samples.fps if policy.config.expert.semantic_age_max_s else None
        self.env_head: SceneStateHeads | None = None
        if config.prefix_fraction and not policy.config.expert.continuation_prefix:
            raise ValueError("prefix_fraction > 0 needs a policy with expert.continuation_prefix >= 1 (a new policy "
                             "from `train --prefix-fraction` gets chunk_len // 2)")
        if config.env_state_loss_weight or config.encoder_env_state_loss_weight or config.action_env_state_loss_weight:
            if self.env_state_stats is None:
                raise ValueError("env_state_loss_weight > 0 needs episodes that record observation.environment_state "
                                 "(datasets from `asyncvla-ros demos`, or --sim-episodes); these have none")
            conv = policy.backbone.conv_vision
            if config.encoder_env_state_loss_weight and conv is None:
                raise ValueError("encoder_env_state_loss_weight > 0 needs the conv vision encoder (--vision-encoder conv)")
            recorded = len(self.env_state_stats.mean)
            for name in ("env_state_dims", "action_env_state_dims"):
                if getattr(config, name) > recorded:
                    raise ValueError(f"{name} = {getattr(config, name)}: the episodes record {recorded} scene-state values")
            dims = (config.env_state_dims or recorded, config.action_env_state_dims or recorded)
            channels = conv.stages[KEYPOINT_STAGE][0].out_channels if config.encoder_env_state_loss_weight else 0
            self.env_head = SceneStateHeads(policy.backbone.hidden_size, dims[0], channels,
                                            len(policy.config.backbone.camera_names),
                                            action_dims=dims[1] if config.action_env_state_loss_weight else 0
                                            ).to(self.device)
        self.optimizer = self._optimizer(1)
        self.ema: WeightAverage | None = None  # stage 1's weight average, with ema_decay
        self._writer = None
        self._prefetcher: BatchPrefetcher | None = None
        self._aux_losses: dict[str, list[float]] = {}  # logged name -> this log window's values
        self._engine = None  # the stage's DeepSpeed engine (accelerate's prepared model), under DeepSpeed
        self._engine_checkpoint: Path | None = None  # where a resumed DeepSpeed run's engine state is
        if config.gradient_checkpointing:
            # Non-reentrant: the reentrant kind hides the checkpointed parameters from DDP's unused-parameter
            # search (same gradients either way).
            self.policy.backbone.vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # ------------------------------------------------------------------ setup

    def _optimizer(self, stage: int) -> torch.optim.AdamW:
        c, p = self.config, self.policy
        if stage == 1:
            groups = [
                {"name": "vision", "params": list((p.backbone.conv_vision or p.backbone.vlm.visual).parameters()), "lr": c.lr_vision},
                # The image position embedding (when configured) is an input embedding of the decoder.
                {"name": "language_model", "params": list(p.backbone.vlm.language_model.parameters())
                 + ([p.backbone.image_positions] if p.backbone.image_positions is not None else []), "lr": c.lr_language_model},
                {"name": "action_expert", "params": list(p.expert.parameters()), "lr": c.lr_action_expert},
            ]
            if self.env_head is not None:
                groups.append({"name": "env_state_head", "params": list(self.env_head.parameters()), "lr": c.lr_action_expert})
        else:
            groups = [{"name": "rater", "params": list(p.rater.parameters()), "lr": c.lr_rater}]
        for g in groups:
            g["base_lr"] = g["lr"]
        trainable = {id(q) for g in groups for q in g["params"]}
        for q in list(p.parameters()) + (list(self.env_head.parameters()) if self.env_head is not None else []):
            q.requires_grad_(id(q) in trainable)
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=c.weight_decay)

    @classmethod
    def resume(cls, policy_checkpoint: str | Path, samples: ChunkSamples, out_dir: str | Path, config: TrainConfig | None = None,
               accelerator=None) -> "Trainer":
        """Continue a run from a checkpoint directory written by `save_checkpoint` (with any number of
        processes: the batches and the optimizer state do not depend on it)."""
        from asyncvla_ros.policy.policy import AsyncVLAPolicy
        from asyncvla_ros.training.state import read_progress

        progress = read_progress(Path(policy_checkpoint))
        config = config or train_config_from_saved(progress["train_config"])
        accelerator = accelerator or dp.new_accelerator(config.device, config.mixed_precision)
        policy = AsyncVLAPolicy.from_pretrained(policy_checkpoint, device=dp.process_device(accelerator, config.device))
        trainer = cls(policy, samples, config, out_dir, accelerator=accelerator)
        trainer.stage = progress["stage"]
        head_file = Path(policy_checkpoint) / ENV_HEAD_FILE
        if trainer.env_head is not None:
            if not head_file.is_file():
                raise ValueError(f"{policy_checkpoint}: no {ENV_HEAD_FILE}, but the run trains the environment-state head")
            trainer.env_head.load_state_dict(load_file(head_file))  # copied onto the head's device
        if trainer.stage == 2:
            trainer.optimizer = trainer._optimizer(2)
        elif config.ema_decay:  # the checkpoint's policy is the average; the optimised weights are beside it
            live = Path(policy_checkpoint) / LIVE_WEIGHTS_FILE
            if not live.is_file():
                raise ValueError(f"{policy_checkpoint}: no {LIVE_WEIGHTS_FILE}, but the run averages its weights (ema_decay)")
            trainer.ema = WeightAverage(trainer.policy, config.ema_decay)
            if (Path(policy_checkpoint) / AVERAGE_WEIGHTS_FILE).is_file():
                trainer.ema.load_average_state(load_file(Path(policy_checkpoint) / AVERAGE_WEIGHTS_FILE))
            trainer.ema.load_live_state(load_file(live))
        if dp.uses_deepspeed(accelerator):  # the engine loads its state once prepared (_train_stage)
            load_trainer_state(Path(policy_checkpoint), None, trainer.generator, accelerator.num_processes)
            trainer._engine_checkpoint = Path(policy_checkpoint) / DEEPSPEED_DIR
        else:
            load_trainer_state(Path(policy_checkpoint), trainer.optimizer, trainer.generator)
        trainer.step = progress["step"]
        return trainer

    # ------------------------------------------------------------------ batches

    def batch(self) -> dict:
        """This process's rows of the batch of the current (stage, step), on the training device,
        normalised and perturbed.

        Its random draws (indices, semantic delays, history and state noise, history dropout) come from
        a generator seeded by (seed, stage, step), so the batch of a step does not depend on what ran
        before it: a resumed run sees the same batches, data workers can prepare batches ahead, and
        data-parallel processes split one global batch between them (batches.py).
        """
        c, pol = self.config, self.policy
        key = (self.stage, self.step)
        if c.num_workers:
            if self._prefetcher is None:
                self._prefetcher = BatchPrefetcher(self._source(), c.num_workers)
            cpu = self._prefetcher.get(*key, total=c.steps if self.stage == 1 else c.rater_steps)
        else:
            cpu = collate_batch(self._source(), *key)
        dev, dt = self.device, pol.dtype
        arr = lambda name: torch.as_tensor(cpu[name], device=dev)  # noqa: E731
        norm = pol.normalizer
        batch = {
            "inputs": {k: torch.as_tensor(v) for k, v in cpu["inputs"].items()},
            # Noise is drawn in robot units (rad), then normalised with the data.
            "state": norm.normalize_state(arr("state").to(dt) + c.state_noise_rad * arr("state_noise").to(dt)),
            "actions": norm.normalize_chunk(arr("actions").to(dt), arr("state").to(dt)),  # relative to the true state
            "action_valid": arr("action_valid"),
        }
        if pol.config.expert.semantic_age_max_s:
            batch["semantic_age_s"] = arr("semantic_delay").to(torch.float32) / self._fps
        if pol.config.expert.history_len:
            batch["history"] = norm.normalize_action(arr("history").to(dt) + c.history_noise_rad * arr("history_noise").to(dt))
            batch["history_valid"] = arr("history_valid") & arr("history_keep")[:, None]
        if "env_state" in cpu and self.env_state_stats is not None:
            mean = torch.tensor(self.env_state_stats.mean, device=dev, dtype=dt)
            std = torch.tensor(self.env_state_stats.std, device=dev, dtype=dt)
            batch["env_state"] = (arr("env_state").to(dt) - mean) / std
        return batch

    def _source(self) -> BatchSource:
        c, pol, acc = self.config, self.policy, self.accelerator
        return BatchSource(self.samples, pol.backbone, pol.normalizer, c.batch_size, pol.config.expert.chunk_len,
                           c.time_misalignment, c.history_dropout, c.seed, c.image_shift_px,
                           rank=acc.process_index, world=acc.num_processes)

    def close(self) -> None:
        """Stop the data workers (also done at the end of `fit`)."""
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    # ------------------------------------------------------------------ loop

    def _log(self, name: str, value: float) -> None:
        if not self.accelerator.is_main_process:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        self._writer.add_scalar(name, value, self.step + (0 if self.stage == 1 else self.config.steps))
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"stage": self.stage, "step": self.step, name: value}) + "\n")

    def _mean_over_processes(self, values: list[float]) -> float:
        """The mean of this process's `values`, averaged over the processes (equal counts on each)."""
        mean = torch.tensor(float(np.mean(values)), dtype=torch.float64, device=self.device)
        return float(self.accelerator.reduce(mean, "mean"))

    def _train_stage(self, total: int, loss_fn) -> None:
        c, acc = self.config, self.accelerator
        if dp.uses_deepspeed(acc):
            dp.configure_deepspeed(acc, self.shard.rows.stop - self.shard.rows.start, c.grad_clip_norm)
        # Mixed precision is accelerate's autocast around this module's forward.
        model, self.optimizer = acc.prepare(dp.StageLoss(self.policy, self.env_head, loss_fn), self.optimizer)
        if dp.uses_deepspeed(acc):
            self._engine = model
            if self._engine_checkpoint is not None:  # a resumed run: ZeRO's master weights and moments, this process's part
                dp.load_deepspeed_checkpoint(model, self._engine_checkpoint, DEEPSPEED_TAG)
                self._engine_checkpoint = None
        model.train()
        bar = tqdm(total=total, initial=self.step, desc=f"stage {self.stage}", unit="step", dynamic_ncols=True,
                   disable=not acc.is_main_process)
        t0, losses = time.perf_counter(), []
        self._aux_losses = {}
        while self.step < total:
            # The schedule is a function of the step (not an LR scheduler object): a resumed run needs no
            # scheduler state, and accelerate's prepared schedulers step once per process.
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_scale(self.step, total, c.warmup_steps)
            loss = model(self.batch())
            # The global batch's loss, on every process: all of them stop together on a bad one.
            global_loss = acc.reduce(loss.detach(), "mean")
            if not torch.isfinite(global_loss):
                raise FloatingPointError(f"stage {self.stage} step {self.step}: loss is {global_loss.item()}")
            self.optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            params = [q for g in self.optimizer.param_groups for q in g["params"]]
            acc.clip_grad_norm_(params, c.grad_clip_norm)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update()
            self.step += 1
            losses.append(global_loss.item())
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == total:
                self._log(f"stage{self.stage}/loss", float(np.mean(losses)))
                self._log(f"stage{self.stage}/steps_per_s", len(losses) / (time.perf_counter() - t0))
                for name, values in self._aux_losses.items():
                    self._log(f"stage{self.stage}/{name}", self._mean_over_processes(values))
                bar.set_postfix(loss=f"{np.mean(losses):.4f}")
                t0, losses, self._aux_losses = time.perf_counter(), [], {}
            if self.step % c.checkpoint_every == 0 or self.step == total:
                self.save_checkpoint()
        bar.close()
        self._engine = None  # its optimizer state is the stage's alone (ZeRO's moments and master weights)

    def fit(self) -> Path:
        """Run what remains of stage 1 and stage 2. Returns the final checkpoint directory."""
        c = self.config
        if self.stage == 1:
            if self.step == 0:  # a fresh run: the data's statistics, or a fine-tuned policy's own
                delta = self.policy.config.expert.delta_actions
                data = self.samples.normalizer(delta)
                if not self.keep_normalizer:
                    self.policy.normalizer = data
                elif delta and self.policy.normalizer.delta is None:  # fine-tuned into delta actions
                    self.policy.normalizer = dataclasses.replace(self.policy.normalizer, delta=data.delta)
            if c.ema_decay and self.ema is None:
                self.ema = WeightAverage(self.policy, c.ema_decay)
            self._train_stage(c.steps, self._stage1_loss)
            if self.ema is not None:  # the average is the policy from here on (the rater learns its errors)
                self.ema.copy_to_module()
                self.ema = None
            if c.rater_steps:
                self.stage, self.step = 2, 0
                self.accelerator.free_memory()  # stage 1's prepared optimizer (its moments) and DDP wrapper
                self.optimizer = self._optimizer(2)
        if self.stage == 2 and c.rater_steps:
            self._train_stage(c.rater_steps, self._rater_loss)
        self.close()
        final = self.out_dir / "final"
        self.policy.eval()
        if self.accelerator.is_main_process:
            self.policy.save_pretrained(final)
        if self._writer is not None:
            self._writer.close()
        self.accelerator.wait_for_everyone()  # no process returns before the final policy is written
        return final

    def _rater_loss(self, policy, batch: dict) -> torch.Tensor:
        return rater_training_loss(policy, batch, self.generator, shard=self.shard)

    def _stage1_loss(self, policy, batch: dict) -> torch.Tensor:
        """Unified flow matching, plus the weighted scene-state losses where configured (scene_heads.py)."""
        c = self.config
        flow = dict(generator=self.generator, shard=self.shard, sfm_only=not c.unified,
                    sfm_fraction=c.sfm_fraction, prefix_fraction=c.prefix_fraction)
        if self.env_head is None:
            return flow_matching_loss(policy, batch, **flow)
        loss, terms = flow_and_scene_state_losses(policy, self.env_head, batch,
                                                  lambda cond: flow_matching_loss(policy, batch, cond=cond, **flow))
        weights = {"env_state_loss": c.env_state_loss_weight, "encoder_env_state_loss": c.encoder_env_state_loss_weight,
                   "action_env_state_loss": c.action_env_state_loss_weight}
        for name, term in terms.items():
            self._aux_losses.setdefault(name, []).append(term.item())
            loss = loss + weights[name] * term
        return loss

    def save_checkpoint(self) -> Path:
        """Write the checkpoint of the current (stage, step) from process 0 (every process holds the same
        weights, optimizer state and generator; under DeepSpeed, every process also writes its part of
        the optimizer state). Returns its directory."""
        path = self.out_dir / "checkpoints" / f"stage{self.stage}-step{self.step:06d}"
        deepspeed = dp.uses_deepspeed(self.accelerator)
        if deepspeed:  # collective: ZeRO partitions the optimizer moments and master weights between the processes
            self._engine.save_checkpoint(str(path / DEEPSPEED_DIR), tag=DEEPSPEED_TAG, save_latest=False,
                                         exclude_frozen_parameters=True)
        if not self.accelerator.is_main_process:
            return path
        with self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext():
            self.policy.save_pretrained(path)
        if self.ema is not None:
            save_file(self.ema.live_state(), path / LIVE_WEIGHTS_FILE)
            if self.ema.finer_than_live():
                save_file(self.ema.average_state(), path / AVERAGE_WEIGHTS_FILE)
        if self.env_head is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.env_head.state_dict().items()}, path / ENV_HEAD_FILE)
        save_trainer_state(path, self.stage, self.step, None if deepspeed else self.optimizer, self.generator,
                           dataclasses.asdict(self.config), self.accelerator.num_processes if deepspeed else 0)
        logger.info("checkpoint %s", path)
        if self.config.keep_checkpoints:
            for old in checkpoints_by_age(path.parent)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old)
                logger.info("checkpoint %s deleted (--keep-checkpoints %d)", old, self.config.keep_checkpoints)
        return path


def checkpoints_by_age(directory: Path) -> list[Path]:
    """A run's checkpoint directories (stage<S>-step<N>), oldest first; other entries are left out."""
    found = [(int(m[1]), int(m[2]), p) for p in directory.iterdir()
             if p.is_dir() and (m := re.fullmatch(r"stage(\d+)-step(\d+)", p.name))]
    return [p for *_, p in sorted(found)]
