"""numpy in, numpy out: uint8 NHWC images <-> uint16 code ids, batched, on the model's device.

The one place the tokenizer's pixel convention lives: RGB uint8 -> float in [0, 1] (divide by 255,
no mean/std), NCHW; decoded pixels are clamped to [0, 1] and rounded back to uint8.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from uvd.devices import autocast
from uvd.tokenize.vqgan import VQGANModel

PRECISIONS = ("auto", "fp32", "bf16")


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA (the throughput path) and fp32 elsewhere (exact on CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the convolutions (the quantizer turns it off for its distances); "fp32"
    on CUDA also turns cuDNN's TF32 off, which PyTorch enables by default and which moves ids
    (the exactness the tokenizer needs beyond uvd.devices.autocast)."""
    if precision == "bf16":
        return autocast(device, "bf16")
    if device.type == "cuda":
        return torch.backends.cudnn.flags(
            enabled=True,
            benchmark=torch.backends.cudnn.benchmark,
            deterministic=torch.backends.cudnn.deterministic,
            allow_tf32=False,
        )
    return contextlib.nullcontext()


def check_images(images: np.ndarray, resolution: int) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise TypeError(
            f"images must be a uint8 numpy array, got {type(images).__name__} {getattr(images, 'dtype', '')}"
        )
    if images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        raise ValueError(f"images must be (N, {resolution}, {resolution}, 3) RGB, got {images.shape}")


def to_model_input(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1] on `device` (moved as uint8: 4x less to copy)."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def encode_batch(model: VQGANModel, images: np.ndarray, precision: str = "auto") -> np.ndarray:
    """One forward pass: uint8 (N, H, W, 3) -> uint16 (N, tokens_per_image). No size checks."""
    device = model_device(model)
    precision = resolve_precision(precision, device)
    with torch.inference_mode(), precision_context(device, precision):
        ids = model.get_code(to_model_input(images, device))
    return ids.to("cpu", torch.int32).numpy().astype(np.uint16)


def encode(model: VQGANModel, images: np.ndarray, batch_size: int = 32, precision: str = "auto") -> np.ndarray:
    """uint8 RGB (N, 256, 256, 3) -> uint16 code ids (N, 256) in raster order."""
    check_images(images, model.config.resolution)
    out = np.empty((len(images), model.config.tokens_per_image), dtype=np.uint16)
    for part in _batches(len(images), batch_size):
        out[part] = encode_batch(model, images[part], precision)
    return out


def decode(model: VQGANModel, ids: np.ndarray, batch_size: int = 32, precision: str = "fp32") -> np.ndarray:
    """Code ids (N, 256) -> uint8 RGB (N, 256, 256, 3), clamped to [0, 1] before rounding."""
    ids = np.asarray(ids)
    n_codes = model.config.num_embeddings
    if ids.ndim != 2 or ids.shape[1] != model.config.tokens_per_image:
        raise ValueError(f"ids must be (N, {model.config.tokens_per_image}), got {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= n_codes):
        raise ValueError(f"ids must lie in 0..{n_codes - 1}, got {ids.min()}..{ids.max()}")
    device = model_device(model)
    precision = resolve_precision(precision, device)
    res = model.config.resolution
    out = np.empty((len(ids), res, res, 3), dtype=np.uint8)
    for part in _batches(len(ids), batch_size):
        with torch.inference_mode():
            with precision_context(device, precision):
                x = model.decode_code(torch.from_numpy(ids[part].astype(np.int64)).to(device))
            x = x.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            out[part] = x.permute(0, 2, 3, 1).cpu().numpy()
    return out
