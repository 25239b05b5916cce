"""Plugging in any torch model as an expert: a TorchScript file or a `package.module:factory`.

Used for surface normals and learned edges, which `transformers` has no model class for. A model
here maps float (B, 3, h, w) images (scaled to [0, 1], then (x - mean) / std) to (B, C, h', w')
maps: C = 3 normal vectors for normals, C = 1 edge probabilities (or logits) for edges.

    spec "normals.pt"               torch.jit.load (export any model with torch.jit.script/trace)
    spec "my_pkg.models:dsine"      import my_pkg.models, call dsine() -> torch.nn.Module
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from uvd.devices import autocast, pick_device
from uvd.sources.label.handler import to_batch


def run_dense_module(model: Any, images: list, preprocess: Any, precision: str, channels: int, what: str) -> Any:
    """One batched forward of a plugged-in module: float32 (B, channels, h, w) predictions, checked."""
    import torch

    device = next(iter(model.parameters())).device
    pixels = torch.from_numpy(
        to_batch(images, preprocess.size, preprocess.mean, preprocess.std, preprocess.resample)
    ).to(device)
    with torch.inference_mode(), autocast(str(device), precision):
        pred = model(pixels).float()
    if pred.ndim != 4 or pred.shape[1] != channels:
        raise ValueError(f"a {what} model must return (B, {channels}, h, w), got {tuple(pred.shape)}")
    return pred


def load_torch_module(spec: str, device: str) -> Any:
    """A TorchScript path or an importable `module:callable` -> an eval-mode module on `device`."""
    import torch

    device = pick_device(device)
    if os.path.exists(spec) or spec.endswith((".pt", ".pth", ".ts")):
        model = torch.jit.load(spec, map_location=device)
    elif ":" in spec:
        module_name, _, attr = spec.partition(":")
        model = getattr(importlib.import_module(module_name), attr)()
    else:
        raise ValueError(f"model {spec!r}: give a TorchScript file or 'package.module:factory'")
    return model.eval().to(device)
