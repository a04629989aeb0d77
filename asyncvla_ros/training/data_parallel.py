"""Data-parallel training through HF accelerate: one process per GPU, started by `accelerate launch` or
`torchrun`, or a plain single process when neither started it.

Every process trains on its contiguous rows of the step's global batch (batches.py), and the losses
take those rows as a `policy.training.Shard` (how the draws and the scaling make the mean over
processes the global batch's loss is described there).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from asyncvla_ros.training.config import MIXED_PRECISIONS

logger = logging.getLogger(__name__)


def new_accelerator(device: str, mixed_precision: str | None = None):
    """The `accelerate.Accelerator` of a training run on `device` ("cpu": gloo between processes, under
    DDP or DeepSpeed's CPU accelerator; else each process on its own GPU, NCCL).

    Args:
        mixed_precision: "no" or "bf16" (autocast around each step's forward); None takes the
            launcher's (`accelerate launch --mixed_precision`, or its config file), else "no".

    Raises:
        ValueError: an unknown precision, an engine this trainer does not support (see `check_engine`),
            or DeepSpeed on the CPU of a machine with GPUs.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs

    if mixed_precision is not None and mixed_precision not in MIXED_PRECISIONS:
        raise ValueError(f"mixed precision {mixed_precision!r}: expected one of {', '.join(MIXED_PRECISIONS)}")
    # A configuration may leave a trained parameter without a gradient in a step (none of those the
    # tests run does); plain DDP stops the run there. This costs one autograd-graph walk per step.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    handlers = [ddp]
    on_cpu = torch.device(device).type == "cpu"
    if on_cpu and launched_with_deepspeed():
        # DeepSpeed's CPU accelerator, between processes over gloo (accelerate's cpu=True would drop
        # DeepSpeed for plain DDP): how the tests run ZeRO-2 without a GPU.
        if torch.cuda.is_available():
            raise ValueError("DeepSpeed on a machine with GPUs trains on them: give --device cuda")
        from accelerate import InitProcessGroupKwargs

        handlers.append(InitProcessGroupKwargs(backend="gloo"))
        on_cpu = False
    # The trainer places the policy itself (a single process keeps `--device cuda:1` as given).
    accelerator = Accelerator(cpu=on_cpu, mixed_precision=mixed_precision, device_placement=False,
                              kwargs_handlers=handlers)
    check_engine(accelerator)
    if accelerator.num_processes > 1 and accelerator.device.type == "cpu" and torch.cuda.is_available():
        logger.warning("%d processes train on the CPU (--device %s) on a machine with GPUs: give --device cuda",
                       accelerator.num_processes, device)
    return accelerator


def process_device(accelerator, device: str) -> torch.device:
    """Where this process trains: under a launcher each process has its own GPU (or the CPU); a single
    process keeps the `device` it was given (`cuda:1` stays cuda:1)."""
    return accelerator.device if accelerator.num_processes > 1 else torch.device(device)


def once_for_all(accelerator, make):
    """`make()` run on process 0 alone, its result handed to every process (pickled through the process
    group); a single process just calls it. For what each process needs the same copy of and would
    otherwise make once per process on the same cores: the sim demonstrations or DAgger rollouts a run
    trains on (process 0 runs them with its --sim-workers while the others wait)."""
    if accelerator.num_processes == 1:
        return make()
    from accelerate.utils import broadcast_object_list

    box = [make() if accelerator.is_main_process else None]
    broadcast_object_list(box, from_process=0)
    return box[0]


def check_engine(accelerator) -> None:
    """Refuse the engines whose sharded parameters or optimizer state the checkpoints cannot hold.

    Raises:
        ValueError: FSDP, DeepSpeed ZeRO-3, or a precision other than no/bf16, naming what works.
    """
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    supported = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU, DistributedType.DEEPSPEED)
    if kind not in supported:
        raise ValueError(f"accelerate's {kind} is not supported by this trainer: launch with config/accelerate/ddp.yaml "
                         "(DDP) or config/accelerate/zero2.yaml (DeepSpeed ZeRO-2)")
    if kind == DistributedType.DEEPSPEED and accelerator.state.deepspeed_plugin.zero_stage > 2:
        raise ValueError("DeepSpeed ZeRO-3 partitions the parameters, which the policy checkpoints do not gather: "
                         "use zero_stage 2 (config/accelerate/zero2.yaml)")
    if accelerator.mixed_precision not in MIXED_PRECISIONS:
        raise ValueError(f"mixed precision {accelerator.mixed_precision!r} (from the launcher's config): "
                         f"expected one of {', '.join(MIXED_PRECISIONS)}")


def launched_with_deepspeed() -> bool:
    """Whether `accelerate launch` was given a DeepSpeed config (config/accelerate/zero2.yaml)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def uses_deepspeed(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.DEEPSPEED


def configure_deepspeed(accelerator, rows: int, grad_clip_norm: float) -> None:
    """Fill what DeepSpeed takes from a dataloader, which this trainer has none of: the samples per
    process and step (`rows`), and the clipping it applies itself inside `accelerator.backward`."""
    ds = accelerator.state.deepspeed_plugin.deepspeed_config
    ds["train_micro_batch_size_per_gpu"] = rows
    ds["gradient_accumulation_steps"] = 1
    ds["train_batch_size"] = rows * accelerator.num_processes
    ds["gradient_clipping"] = grad_clip_norm


def load_deepspeed_checkpoint(engine, directory, tag: str) -> None:
    """Load this process's part of a checkpoint the DeepSpeed `engine.save_checkpoint` wrote (the
    trainable weights, ZeRO's float32 master weights and optimizer moments) into the prepared `engine`.
    The frozen weights are not in it: they come from the policy the run was resumed from.

    Raises:
        ValueError: no checkpoint of that tag there, or one DeepSpeed could not load.
    """
    if not (Path(directory) / tag).is_dir():
        raise ValueError(f"{directory}: no DeepSpeed checkpoint {tag!r} to resume from")
    loaded, _ = engine.load_checkpoint(str(directory), tag=tag, load_module_strict=False, load_lr_scheduler_states=False)
    if loaded is None:
        raise ValueError(f"{directory}: DeepSpeed could not load its checkpoint {tag!r}")


class StageLoss(nn.Module):
    """The policy and the training-only heads, with one stage's loss as `forward`: the module that
    `accelerator.prepare` wraps, so that DDP sees one forward per step over every trained parameter
    (the loss calls several of the policy's submodules, never `policy.forward`)."""

    def __init__(self, policy: nn.Module, heads: nn.Module | None, loss_fn) -> None:
        super().__init__()
        self.policy = policy
        self.heads = heads
        self._loss_fn = loss_fn  # (policy, batch) -> scalar loss of this process's rows

    def forward(self, batch: dict) -> torch.Tensor:
        return self._loss_fn(self.policy, batch)
