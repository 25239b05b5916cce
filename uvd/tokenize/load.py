"""Load and save VQGAN checkpoints in open-muse's folder format (config.json + weights).

A checkpoint is a folder with `config.json` (VQGANModel's constructor arguments, diffusers
style, `_class_name` etc. ignored) and one weights file, looked for in this order:
model.safetensors, diffusion_pytorch_model.safetensors, pytorch_model.bin,
diffusion_pytorch_model.bin. Pickled `.bin` files are read with `torch.load(weights_only=True)`,
so a checkpoint can never run code. `load_vqgan` also takes a Hugging Face hub id
(`owner/name`, or `owner/name/sub/folder` for a checkpoint inside a repo), read from the local
cache when the hub cannot be reached.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from uvd.tokenize.vqgan import DERIVED_CONFIG_KEYS, VQGANConfig, VQGANModel

log = logging.getLogger("uvd.tokenize")

CONFIG_NAME = "config.json"
WEIGHT_NAMES = (
    "model.safetensors",
    "diffusion_pytorch_model.safetensors",
    "pytorch_model.bin",
    "diffusion_pytorch_model.bin",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w./-]+)?$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names the file and the offending keys."""


# --- config ------------------------------------------------------------------------------------
def config_from_dict(data: dict[str, Any], where: str = CONFIG_NAME) -> VQGANConfig:
    """VQGANConfig from a config.json dict; metadata (`_*`) dropped, unknown keys warned about."""
    fields = set(VQGANConfig.field_names())
    known = {k: v for k, v in data.items() if k in fields}
    unknown = sorted(k for k in data if k not in fields and not k.startswith("_") and k not in DERIVED_CONFIG_KEYS)
    if unknown:
        log.warning("%s: ignoring keys VQGANModel does not take: %s", where, ", ".join(unknown))
    try:
        config = VQGANConfig(**known)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: bad VQGAN config: {exc}") from None
    for key in DERIVED_CONFIG_KEYS:
        if key in data and data[key] != getattr(config, key):
            raise CheckpointError(f"{where}: {key}={data[key]} disagrees with the config's {getattr(config, key)}")
    return config


def read_config(folder: str | os.PathLike) -> VQGANConfig:
    path = Path(folder) / CONFIG_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no {CONFIG_NAME}; a checkpoint folder needs one") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return config_from_dict(data, where=str(path))


# --- weights -----------------------------------------------------------------------------------
def find_weights(folder: str | os.PathLike) -> Path:
    """The weights file of a checkpoint folder, safetensors first."""
    for name in WEIGHT_NAMES:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise CheckpointError(f"{folder}: no weights file; expected one of {', '.join(WEIGHT_NAMES)}")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or .bin file (the latter with torch.load(weights_only=True))."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a flat mapping of parameter name -> tensor")
    return state


def check_state_dict(
    expected: dict[str, torch.Size], state: dict[str, torch.Tensor], where: str, show: int = 8
) -> None:
    """Raise CheckpointError naming missing, unexpected and mis-shaped keys (if any)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k])}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k])
    )
    if not (missing or unexpected or mismatched):
        return

    def listing(title: str, items: list[str]) -> str:
        more = f" (+{len(items) - show} more)" if len(items) > show else ""
        return f"\n  {len(items)} {title}: " + ", ".join(items[:show]) + more

    msg = f"{where}: weights do not fit the VQGAN described by its config.json"
    if missing:
        msg += listing("missing", missing)
    if unexpected:
        msg += listing("unexpected", unexpected)
    if mismatched:
        msg += listing("mis-shaped", mismatched)
    msg += "\n  (is config.json the one these weights were trained with?)"
    raise CheckpointError(msg)


# --- folders and the hub -----------------------------------------------------------------------
def resolve_checkpoint(path_or_hub_id: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local checkpoint folder for a path or a hub id (downloaded, or from the cache offline)."""
    local = Path(path_or_hub_id).expanduser()
    if local.exists():
        return _checkpoint_folder(local)
    text = str(path_or_hub_id)
    if not _HUB_ID.match(text) or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text}: no such checkpoint folder, and not a hub id (owner/name[/subfolder])")
    owner, name, *sub = text.split("/")
    repo_id, subfolder = f"{owner}/{name}", "/".join(sub)
    patterns = [CONFIG_NAME, *WEIGHT_NAMES]
    if subfolder:
        patterns = [f"{subfolder}/{p}" for p in patterns]
    from huggingface_hub import snapshot_download

    try:
        root = snapshot_download(
            repo_id, allow_patterns=patterns, cache_dir=None if cache_dir is None else str(cache_dir)
        )
    except Exception as online_exc:  # noqa: BLE001 - offline, rate-limited...: try the cache
        try:
            root = snapshot_download(
                repo_id,
                allow_patterns=patterns,
                cache_dir=None if cache_dir is None else str(cache_dir),
                local_files_only=True,
            )
        except Exception:  # noqa: BLE001
            raise CheckpointError(
                f"{repo_id}: not reachable on the hub ({type(online_exc).__name__}) and not in the local "
                "cache; download it once with network, or pass a local folder"
            ) from None
    return _checkpoint_folder(Path(root) / subfolder)


def _checkpoint_folder(path: Path) -> Path:
    if path.is_file():
        raise CheckpointError(f"{path}: pass the checkpoint folder (config.json + weights), not a file")
    if (path / CONFIG_NAME).is_file():
        return path
    candidates = sorted(p.parent for p in path.glob(f"*/{CONFIG_NAME}"))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise CheckpointError(f"{path}: several checkpoints inside, pick one: {', '.join(map(str, candidates))}")
    raise CheckpointError(f"{path}: no {CONFIG_NAME} here or in a direct subfolder")


# --- public API --------------------------------------------------------------------------------
def is_hub_id(text: str) -> bool:
    """`owner/name[/subfolder]` that names no local path: resolved from the hub (or its cache) on a worker."""
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "/", "~")) and not Path(text).expanduser().exists()


def check_checkpoint(path_or_hub_id: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder, with its config read and its weights found, without loading them:
    what `uvd dataset` checks on the driver before any work (CheckpointError says what is wrong)."""
    folder = resolve_checkpoint(path_or_hub_id, cache_dir)
    read_config(folder)
    find_weights(folder)
    return folder


def load_vqgan(
    path_or_hub_id: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
) -> VQGANModel:
    """A VQGANModel in eval mode from a checkpoint folder or hub id; strict, shape-checked load.

    The model is built on the meta device and the checkpoint tensors are assigned into it, so a
    585 MB checkpoint is held in memory once.
    """
    folder = resolve_checkpoint(path_or_hub_id, cache_dir)
    config = read_config(folder)
    weights = find_weights(folder)
    state = read_state_dict(weights)
    with torch.device("meta"):
        model = VQGANModel(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state_dict(expected, state, where=str(weights))
    state = {k: v.to(dtype).contiguous() for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    target = torch.device(device) if device is not None else torch.device("cpu")
    return model.to(target).eval().requires_grad_(False)


def save_vqgan(
    model: VQGANModel, folder: str | os.PathLike, fmt: str = "safetensors", extra: dict[str, Any] | None = None
) -> Path:
    """Write config.json + model.safetensors (or pytorch_model.bin with fmt='bin') to `folder`.

    `extra` goes into config.json under `_uvd` (training provenance); loaders ignore it.
    """
    if fmt not in ("safetensors", "bin"):
        raise ValueError(f"fmt must be 'safetensors' or 'bin', got {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "VQGANModel", **model.config.to_dict()}
    if extra:
        config["_uvd"] = extra
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = folder / "model.safetensors"
        save_file(state, str(path), metadata={"format": "pt"})
    else:
        path = folder / "pytorch_model.bin"
        torch.save(state, path)
    return path
