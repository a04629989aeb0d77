"""Optimizer and progress state of a training run, saved beside the policy checkpoint.

safetensors for tensors (optimizer moments, RNG state), JSON for the rest; nothing is unpickled. Under
DeepSpeed ZeRO the optimizer state (moments and float32 master weights) is split between the
processes, and the engine writes it itself, one file per process, in `DEEPSPEED_DIR` (its own format,
read back by its own `load_checkpoint`): this file then records where it is and how many parts it has.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.json"
TENSOR_FILE = "trainer_state.safetensors"
DEEPSPEED_DIR = "deepspeed"  # DeepSpeed's own checkpoint of the optimizer state, beside the policy
DEEPSPEED_TAG = "state"  # its tag (the sub-folder DeepSpeed writes), one per checkpoint directory


def save_trainer_state(directory: Path, stage: int, step: int, optimizer: torch.optim.Optimizer | None,
                       generator: torch.Generator, config: dict, deepspeed_processes: int = 0) -> None:
    """Write the progress, the generator and `optimizer`'s state; or, with `deepspeed_processes` (and
    no optimizer), a note that the DeepSpeed engine of that many processes wrote it in DEEPSPEED_DIR."""
    tensors = {"generator": generator.get_state()}
    meta = {"stage": stage, "step": step, "train_config": config}
    if deepspeed_processes:
        meta["deepspeed_processes"] = deepspeed_processes
    else:
        sd = optimizer.state_dict()
        scalars: dict[str, dict] = {}
        for param_id, slots in sd["state"].items():
            for key, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"opt.{param_id}.{key}"] = value.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(param_id), {})[key] = value
        meta |= {"param_groups": sd["param_groups"], "scalars": scalars}
    save_file(tensors, directory / TENSOR_FILE)
    (directory / STATE_FILE).write_text(json.dumps(meta, indent=2))


def read_progress(directory: Path) -> dict:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a training checkpoint: no {STATE_FILE} (a policy alone "
                                "continues with --init)")
    return json.loads(path.read_text())


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer | None, generator: torch.Generator,
                       deepspeed_processes: int = 0) -> dict:
    """Restore the sampling generator and `optimizer`'s moments; returns the progress metadata. Under
    DeepSpeed (`deepspeed_processes`, the processes of this run; no optimizer) only the generator: the
    engine loads the rest from DEEPSPEED_DIR once it is prepared.

    Raises:
        ValueError: a checkpoint whose optimizer state this run cannot take (DeepSpeed's against a plain
            optimizer, or the other way round, or ZeRO's parts for another number of processes), or
            whose optimizer groups are not this model's.
    """
    meta = read_progress(directory)
    saved = meta.get("deepspeed_processes", 0)
    if saved and saved != deepspeed_processes:
        now = "this run is not under DeepSpeed" if not deepspeed_processes else f"this run has {deepspeed_processes}"
        raise ValueError(f"{directory}: DeepSpeed ZeRO saved its optimizer state in {saved} parts, one per process, and "
                         f"{now}: resume with `accelerate launch --config_file config/accelerate/zero2.yaml "
                         f"--num_processes {saved}`, or start a new run from its policy with --init")
    if deepspeed_processes and not saved:
        raise ValueError(f"{directory}: its optimizer state is one torch optimizer's, which DeepSpeed cannot take: resume it "
                         "without DeepSpeed (one process, or config/accelerate/ddp.yaml), or start a new run from its "
                         "policy with --init")
    tensors = load_file(Path(directory) / TENSOR_FILE)
    generator.set_state(tensors.pop("generator"))
    if saved:
        return meta
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, slots in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(slots)
    groups = meta["param_groups"]
    current = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current]:
        raise ValueError(f"{directory}: optimizer groups do not match this model (saved {[len(g['params']) for g in groups]}, "
                         f"now {[len(g['params']) for g in current]})")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return meta
