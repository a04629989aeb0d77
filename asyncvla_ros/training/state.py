"""Optimizer and progress state of a training run, saved beside the policy checkpoint.

safetensors for tensors (optimizer moments, RNG state), JSON for the rest; nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.json"
TENSOR_FILE = "trainer_state.safetensors"


def save_trainer_state(directory: Path, stage: int, step: int, optimizer: torch.optim.Optimizer,
                       generator: torch.Generator, config: dict) -> None:
    sd = optimizer.state_dict()
    tensors = {"generator": generator.get_state()}
    scalars: dict[str, dict] = {}
    for param_id, slots in sd["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"opt.{param_id}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    save_file(tensors, directory / TENSOR_FILE)
    meta = {"stage": stage, "step": step, "param_groups": sd["param_groups"], "scalars": scalars, "train_config": config}
    (directory / STATE_FILE).write_text(json.dumps(meta, indent=2))


def read_progress(directory: Path) -> dict:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a training checkpoint: no {STATE_FILE} (a policy alone, as a "
                                "DeepSpeed run's checkpoints are, continues with --init)")
    return json.loads(path.read_text())


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict:
    """Restore optimizer moments and the sampling generator; returns the progress metadata."""
    meta = read_progress(directory)
    tensors = load_file(Path(directory) / TENSOR_FILE)
    generator.set_state(tensors.pop("generator"))
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
