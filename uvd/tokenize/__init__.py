"""The LVM's VQGAN tokenizer (open-muse layout): 256x256 RGB images <-> 16x16 codes of 8192.

    from uvd.tokenize import DEFAULT_CHECKPOINT, load_vqgan, encode, decode
    model = load_vqgan(DEFAULT_CHECKPOINT)          # or a folder / hub id of the real LVM VQGAN
    ids = encode(model, images_uint8_nhwc)          # np.uint16 (N, 256), raster order
    pixels = decode(model, ids)                     # np.uint8 (N, 256, 256, 3)

Importing this package is cheap: torch loads on first use of anything but DEFAULT_CHECKPOINT.

Modules, one job each:
    vqgan.py        the model: open-muse's VQGANModel layout and numerics; LVM/small/debug configs
    load.py         checkpoint folders and hub ids <-> model (strict, shape-checked, safetensors first)
    codec.py        encode/decode: uint8 NHWC <-> uint16 ids, batched, bf16 autocast on CUDA
    handler.py      Beam RunInference ModelHandler (load once per worker, batching, resource hints)
    stage.py        `uvd tokenize`: TokenizeImages PTransform, images table -> tokens table
    detokenize.py   `uvd decode`: tokens table or shards -> PNGs
    train_small.py  `make tokenizer`: trains the shipped small model (assets/vqgan-small)
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
