"""Where torch work runs and in which precision: one device rule and one autocast rule for all of uvd.

Torch-only (no Beam, no uvd imports), so the trainer, the tokenizer and the label experts can share
it without import cycles. torch is imported lazily: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

BF16 = ("bf16", "bfloat16")
FP32 = ("fp32", "float32")
PRECISIONS = ("auto", *BF16, *FP32)


def pick_device(device: str = "auto", index: int | None = None) -> torch.device:
    """'auto' -> CUDA when a GPU is visible (device `index`, e.g. LOCAL_RANK), else CPU; else as given."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and index is not None:
        device = f"cuda:{index}"
    return torch.device(device)


def autocast(device: str | torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast where it pays: CUDA with bf16 support for 'auto', or whenever bf16 is asked for.

    'auto' stays fp32 on CPU (CPU bf16 matmuls are slower, not faster); fp32/float32 is a no-op.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = torch.device(device).type
    auto_bf16 = precision == "auto" and kind == "cuda" and torch.cuda.is_bf16_supported()
    if precision in BF16 or auto_bf16:
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()
