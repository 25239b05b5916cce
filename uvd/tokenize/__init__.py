"""The LVM's VQGAN tokenizer (open-muse layout): 256x256 RGB images <-> 16x16 codes of 8192.

    from uvd.tokenize import DEFAULT_CHECKPOINT, load_vqgan, encode, decode
    model = load_vqgan(DEFAULT_CHECKPOINT)          # or a folder / hub id of the real LVM VQGAN
    ids = encode(model, images_uint8_nhwc)          # np.uint16 (N, 256), raster order
    pixels = decode(model, ids)                     # np.uint8 (N, 256, 256, 3)

Importing this package is cheap: torch loads on first use of anything but DEFAULT_CHECKPOINT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The small model trained by `make tokenizer` (uvd/tokenize/train_small.py), shipped in the package.
DEFAULT_CHECKPOINT = str(Path(__file__).parent / "assets" / "vqgan-small")
# The real LVM tokenizer's weights on the Hugging Face hub (download once, then cached).
LVM_HUB_ID = "openMUSE/vqgan-f16-8192-laion"

_LAZY = {
    "load_vqgan": "uvd.tokenize.load",
    "save_vqgan": "uvd.tokenize.load",
    "CheckpointError": "uvd.tokenize.load",
    "encode": "uvd.tokenize.codec",
    "decode": "uvd.tokenize.codec",
    "VQGANModel": "uvd.tokenize.vqgan",
    "VQGANConfig": "uvd.tokenize.vqgan",
}

__all__ = ["DEFAULT_CHECKPOINT", "LVM_HUB_ID", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'uvd.tokenize' has no attribute {name!r}")
