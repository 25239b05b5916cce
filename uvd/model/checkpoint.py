"""Checkpoints: one file per step holding everything a resume needs, written atomically.

Contents (nanoGPT style, one dict): model and optimizer state (full, unsharded, so a checkpoint
from FSDP loads in a single process and back), step, the train config, the model config, the
loader state of every rank and every rank's RNG states. Written to `<name>.tmp` and renamed, so a
crash never leaves a half-written `step_*.pt`; `latest` finds the newest complete one.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

_NAME = re.compile(r"step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _gather(obj: Any) -> list[Any]:
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def save(path: str | Path, model, optimizer, step: int, config: dict, model_config: dict, loader_state: dict) -> None:
    """Collective under torchrun (every rank calls it); rank 0 writes `path` atomically."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd = get_model_state_dict(model, options=options)
    optim_sd = get_optimizer_state_dict(model, optimizer, options=options)
    loaders, rngs = _gather(loader_state), _gather(rng_state())
    if dist.is_initialized() and dist.get_rank() != 0:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model_sd,
            "optimizer": optim_sd,
            "step": step,
            "config": config,
            "model_config": model_config,
            "loader": loaders,
            "rng": rngs,
        },
        tmp,
    )
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def latest(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in `directory` (temp files are ignored), or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.search(p.name))]
    return max(found)[1] if found else None


def read(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def restore(ckpt: dict, model, optimizer=None, rank: int = 0) -> None:
    """Load a `read` checkpoint into a (possibly DDP/FSDP-wrapped) model and optimizer; set RNG."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    set_model_state_dict(model, ckpt["model"], options=options)
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, ckpt["optimizer"], options=options)
    rngs = ckpt.get("rng") or []
    if rank < len(rngs):
        set_rng_state(rngs[rank])
