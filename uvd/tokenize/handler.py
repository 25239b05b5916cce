"""A Beam RunInference ModelHandler for the VQGAN: uint8 256x256x3 image -> uint16 ids (256,).

RunInference loads the model once per worker (or once per machine with `large_model=True`),
batches elements between `min_batch_size` and `max_batch_size` (Beam's BatchElements adapts the
size to the observed latency), and applies this handler's resource hints to the inference step
only, so on Dataflow just that step asks for a GPU. Wrap it in KeyedModelHandler to carry the
image_id through (uvd.tokenize.stage does).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from uvd.devices import pick_device
from uvd.tokenize.codec import PRECISIONS, encode_batch, model_device


def worker_checkpoint(checkpoint: str) -> str:
    """The checkpoint path as seen on this machine.

    The launcher passes its own absolute path to the shipped default; on a remote worker the
    package is installed elsewhere, so "default", or a missing path ending in the default's
    folders, means this machine's copy.
    """
    from uvd.tokenize import DEFAULT_CHECKPOINT

    tail = Path(DEFAULT_CHECKPOINT).parts[-3:]
    if checkpoint == "default" or (not os.path.exists(checkpoint) and Path(checkpoint).parts[-3:] == tail):
        return DEFAULT_CHECKPOINT
    return checkpoint


def pad_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a batch up to `size` images (a compiled model sees one shape); never truncates."""
    if len(images) >= size:
        return images
    pad = np.zeros((size - len(images), *images.shape[1:]), dtype=images.dtype)
    return np.concatenate([images, pad])


CPU_MICRO_BATCH = 1


class VQGANModelHandler(ModelHandler[np.ndarray, np.ndarray, Any]):
    """Images (HxWx3 uint8) -> code ids (uint16, tokens_per_image)."""

    def __init__(
        self,
        checkpoint: str,
        *,
        device: str = "auto",
        precision: str = "auto",
        min_batch_size: int = 1,
        max_batch_size: int = 64,
        accelerator: str | None = None,
        large_model: bool = False,
        compile: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(f"need 1 <= min_batch_size <= max_batch_size, got {min_batch_size}, {max_batch_size}")
        self.checkpoint = str(checkpoint)
        self.device, self.precision = device, precision
        self.min_batch_size, self.max_batch_size = min_batch_size, max_batch_size
        self.accelerator = accelerator
        self.compile = compile
        self._share_across_processes = large_model

    def load_model(self) -> Any:
        """Load once per worker; on CUDA the weights go channels_last (what cuDNN runs fastest)."""
        import torch

        from uvd.tokenize.load import load_vqgan

        device = pick_device(self.device)
        model = load_vqgan(worker_checkpoint(self.checkpoint), device=device)
        if torch.device(device).type == "cuda":
            torch.backends.cudnn.benchmark = True
        # channels_last on CPU too: oneDNN's convolutions run ~1.6x faster with it (measured on the
        # small model, 2 cores), and the NHWC input needs no copy.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
        if self.compile:
            # One static shape (batches are padded to max_batch_size), so it compiles once. On an
            # H200 this made the LVM encoder 3x faster than eager bf16 (benchmarks/gpu_tokenize.py).
            model.get_code = torch.compile(model.get_code, dynamic=False)
        return model

    def run_inference(
        self, batch: Sequence[np.ndarray], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[np.ndarray]:
        if not len(batch):
            return []
        images = np.stack(batch)
        if self.compile:
            images = pad_batch(images, self.max_batch_size)
        if model_device(model).type == "cpu" and not self.compile:
            # On CPU a batch's activations overflow the caches: one image per forward pass is faster
            # (benchmarks/bench_tokenize.py), so RunInference's batches are walked image by image.
            ids = np.concatenate(
                [
                    encode_batch(model, images[i : i + CPU_MICRO_BATCH], precision=self.precision)
                    for i in range(0, len(images), CPU_MICRO_BATCH)
                ]
            )
        else:
            ids = encode_batch(model, images, precision=self.precision)
        return list(ids[: len(batch)])

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_resource_hints(self) -> dict[str, str]:
        return {"accelerator": self.accelerator} if self.accelerator else {}

    def get_metrics_namespace(self) -> str:
        return "uvd.tokenize"

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(x.nbytes for x in batch)
