"""Evaluation sets as a fingerprint index, and the lookup each training image makes against it.

An evaluation set is an image folder (any PIL-readable files, centre-cropped to 256x256 the way
single-image sources are) or a folder of shards/tokens tables of prompts (decoded to pixels with
the dataset's tokenizer first, so its images are compared the way the model sees them). Evaluation
sets are small next to training data, so the index is built once on the driver and rides along as
a side input: each training image costs `bands` dictionary lookups and a popcount per candidate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from uvd.config import ConfigError
from uvd.quality.fingerprint import dct_hash, hamming
from uvd.quality.grouping import band_keys

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _images_from_folder(folder: Path) -> Iterator[tuple[str, np.ndarray]]:
    from uvd.transforms.image import to_square_rgb

    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            pixels, _ = to_square_rgb(path.read_bytes(), 256)
        except Exception:  # noqa: BLE001 - an unreadable eval file cannot contaminate anything
            continue
        yield str(path.relative_to(folder)), pixels


def _images_from_shards(folder: Path, checkpoint: str, limit: int | None) -> Iterator[tuple[str, np.ndarray]]:
    from uvd.tokenize.codec import decode
    from uvd.tokenize.detokenize import parquet_files, read_rows
    from uvd.tokenize.load import load_vqgan

    model = load_vqgan(checkpoint)
    for name, ids in read_rows(parquet_files(folder), limit):
        for i, pixels in enumerate(decode(model, ids, batch_size=1)):
            yield f"{name}/{i}", pixels


def eval_kind(path: str) -> str:
    """'shards' when the folder holds Parquet, 'images' when it holds image files."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(
            f"quality.decontaminate.eval_sets: {path!r} is not a folder; give an image folder or a folder of shards"
        )
    for _, _, files in os.walk(p):
        if any(f.endswith(".parquet") for f in files):
            return "shards"
        if any(f.lower().endswith(IMAGE_SUFFIXES) for f in files):
            return "images"
    raise ConfigError(f"quality.decontaminate.eval_sets: {path!r} has no images and no .parquet files")


def load_eval_set(path: str, bits: int, checkpoint: str = "", limit: int | None = None) -> dict[str, str]:
    """eval item id -> hex hash for every image of an evaluation set."""
    p = Path(path)
    items = _images_from_shards(p, checkpoint, limit) if eval_kind(path) == "shards" else _images_from_folder(p)
    out = {}
    for item, pixels in items:
        out[item] = dct_hash(pixels, bits)[0].tobytes().hex()
    return out


class EvalIndex:
    """Band buckets of every evaluation image; `match` finds the nearest one within `threshold`."""

    def __init__(self, sets: dict[str, dict[str, str]], bands: int, threshold: int) -> None:
        self.bands, self.threshold = bands, threshold
        self.buckets: dict[str, list[tuple[str, str, np.ndarray]]] = {}
        self.sizes = {name: len(items) for name, items in sets.items()}
        for name, items in sets.items():
            for item, hx in items.items():
                h = np.frombuffer(bytes.fromhex(hx), np.uint8)
                for key in band_keys(h, bands):
                    self.buckets.setdefault(key, []).append((name, item, h))

    def match(self, h: np.ndarray) -> tuple[str, str, int] | None:
        best = None
        for key in band_keys(h, self.bands):
            for name, item, e in self.buckets.get(key, ()):
                d = int(hamming(h, e))
                if d <= self.threshold and (best is None or d < best[2]):
                    best = (name, item, d)
        return best
