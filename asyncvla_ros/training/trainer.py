"""The two-stage AsyncVLA trainer.

Stage 1 trains backbone and action expert with the unified SFM/AFM loss (Alg. 2), history
conditioning (Gaussian-perturbed ground-truth history) and time-misalignment sampling; per-group
learning rates (vision encoder 2e-5, language model and action expert 1e-4), AdamW with weight decay 0,
linear warm-up then cosine decay. Stage 2 trains the confidence rater alone on the frozen model with
the Eq. 6 pseudo-labels. Checkpoints are the policy's own save format plus the optimizer state, and a
run resumes from one at the same step with the same optimizer state and random draws.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asyncvla_ros.policy.losses import sample_semantic_delay
from asyncvla_ros.policy.training import flow_matching_loss, rater_training_loss
from asyncvla_ros.training.config import TrainConfig
from asyncvla_ros.training.samples import ChunkSamples
from asyncvla_ros.training.state import load_trainer_state, save_trainer_state

logger = logging.getLogger(__name__)


def lr_scale(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """Args: the policy to train (its normaliser is replaced by the data's statistics on a fresh run),
    the training samples, the config, and the run directory (checkpoints, logs)."""

    def __init__(self, policy, samples: ChunkSamples, config: TrainConfig, out_dir: str | Path) -> None:
        self.policy = policy.to(config.device)
        self.samples = samples
        self.config = config
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.stage, self.step = 1, 0
        self.optimizer = self._optimizer(1)
        self._writer = None
        if config.gradient_checkpointing:
            self.policy.backbone.vlm.gradient_checkpointing_enable()

    # ------------------------------------------------------------------ setup

    def _optimizer(self, stage: int) -> torch.optim.AdamW:
        c, p = self.config, self.policy
        if stage == 1:
            groups = [
                {"name": "vision", "params": list(p.backbone.vlm.visual.parameters()), "lr": c.lr_vision},
                # The image position embedding (when configured) is an input embedding of the decoder.
                {"name": "language_model", "params": list(p.backbone.vlm.language_model.parameters())
                 + ([p.backbone.image_positions] if p.backbone.image_positions is not None else []), "lr": c.lr_language_model},
                {"name": "action_expert", "params": list(p.expert.parameters()), "lr": c.lr_action_expert},
            ]
        else:
            groups = [{"name": "rater", "params": list(p.rater.parameters()), "lr": c.lr_rater}]
        for g in groups:
            g["base_lr"] = g["lr"]
        trainable = {id(q) for g in groups for q in g["params"]}
        for q in p.parameters():
            q.requires_grad_(id(q) in trainable)
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=c.weight_decay)

    @classmethod
    def resume(cls, policy_checkpoint: str | Path, samples: ChunkSamples, out_dir: str | Path, config: TrainConfig | None = None) -> "Trainer":
        """Continue a run from a checkpoint directory written by `save_checkpoint`."""
        from asyncvla_ros.policy.policy import AsyncVLAPolicy
        from asyncvla_ros.training.state import read_progress

        progress = read_progress(Path(policy_checkpoint))
        config = config or TrainConfig(**progress["train_config"])
        trainer = cls(AsyncVLAPolicy.from_pretrained(policy_checkpoint, device=config.device), samples, config, out_dir)
        trainer.stage = progress["stage"]
        if trainer.stage == 2:
            trainer.optimizer = trainer._optimizer(2)
        load_trainer_state(Path(policy_checkpoint), trainer.optimizer, trainer.generator)
        trainer.step = progress["step"]
        return trainer

    # ------------------------------------------------------------------ batches

    def batch(self) -> dict:
        """Draw a batch: indices, semantic delays and history noise all from the trainer's generator."""
        c, pol, g = self.config, self.policy, self.generator
        e = pol.config.expert
        idx = torch.randint(0, len(self.samples), (c.batch_size,), generator=g).tolist()
        delays = sample_semantic_delay(c.batch_size, e.chunk_len, g) if c.time_misalignment else torch.zeros(c.batch_size, dtype=torch.long)
        raw = [self.samples.sample(i, int(d)) for i, d in zip(idx, delays)]
        norm = pol.normalizer
        in_prompt = pol.config.backbone.state_in_prompt
        obs = [(r["images"], r["task"], norm.normalize_state(r["obs_state"]) if in_prompt else None) for r in raw]
        dev, dt = c.device, pol.dtype
        stack = lambda key: torch.as_tensor(np.stack([r[key] for r in raw]), device=dev)  # noqa: E731
        state = norm.normalize_state(stack("state").to(dt))
        if c.state_noise_std:
            state = state + c.state_noise_std * torch.randn(state.shape, generator=g).to(device=dev, dtype=dt)
        batch = {
            "inputs": pol.backbone.prepare(obs),
            "state": state,
            "actions": norm.normalize_action(stack("actions").to(dt)),
            "action_valid": stack("action_valid"),
        }
        if e.history_len:
            history = norm.normalize_action(stack("history").to(dt))
            noise = torch.randn(history.shape, generator=g).to(device=dev, dtype=dt)
            batch["history"] = history + c.history_noise_std * noise
            valid = stack("history_valid")
            if c.history_dropout:
                keep = torch.rand(c.batch_size, generator=g) >= c.history_dropout
                valid = valid & keep.to(dev)[:, None]
            batch["history_valid"] = valid
        return batch

    # ------------------------------------------------------------------ loop

    def _log(self, name: str, value: float) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        self._writer.add_scalar(name, value, self.step + (0 if self.stage == 1 else self.config.steps))
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"stage": self.stage, "step": self.step, name: value}) + "\n")

    def _train_stage(self, total: int, loss_fn) -> None:
        c = self.config
        self.policy.train()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if c.bf16 else nullcontext()
        bar = tqdm(total=total, initial=self.step, desc=f"stage {self.stage}", unit="step", dynamic_ncols=True)
        t0, losses = time.perf_counter(), []
        while self.step < total:
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_scale(self.step, total, c.warmup_steps)
            with autocast:
                loss = loss_fn(self.policy, self.batch(), self.generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"stage {self.stage} step {self.step}: loss is {loss.item()}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [q for g in self.optimizer.param_groups for q in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, c.grad_clip_norm)
            self.optimizer.step()
            self.step += 1
            losses.append(loss.item())
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == total:
                self._log(f"stage{self.stage}/loss", float(np.mean(losses)))
                self._log(f"stage{self.stage}/steps_per_s", len(losses) / (time.perf_counter() - t0))
                bar.set_postfix(loss=f"{np.mean(losses):.4f}")
                t0, losses = time.perf_counter(), []
            if self.step % c.checkpoint_every == 0 or self.step == total:
                self.save_checkpoint()
        bar.close()

    def fit(self) -> Path:
        """Run what remains of stage 1 and stage 2. Returns the final checkpoint directory."""
        c = self.config
        if self.stage == 1:
            if self.step == 0:
                self.policy.normalizer = self.samples.normalizer()
            unified = lambda pol, batch, g: flow_matching_loss(pol, batch, g, sfm_only=not c.unified)  # noqa: E731
            self._train_stage(c.steps, unified)
            if c.rater_steps:
                self.stage, self.step = 2, 0
                self.optimizer = self._optimizer(2)
        if self.stage == 2 and c.rater_steps:
            self._train_stage(c.rater_steps, rater_training_loss)
        final = self.out_dir / "final"
        self.policy.eval().save_pretrained(final)
        if self._writer is not None:
            self._writer.close()
        return final

    def save_checkpoint(self) -> Path:
        path = self.out_dir / "checkpoints" / f"stage{self.stage}-step{self.step:06d}"
        self.policy.save_pretrained(path)
        save_trainer_state(path, self.stage, self.step, self.optimizer, self.generator, dataclasses.asdict(self.config))
        logger.info("checkpoint %s", path)
        return path
