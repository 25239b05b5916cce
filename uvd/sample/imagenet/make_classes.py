"""Make the tiny ImageNet-style class tree: random crops of the shared photos, one photo per class.

    .venv/bin/python uvd/sample/imagenet/make_classes.py    # rewrites uvd/sample/imagenet/<class>/

A stand-in for ImageNet's `train/<wnid>/*.JPEG` layout, small enough to commit: every image of a
class is a different crop (position, size, aspect) of one photo, so a sentence is visibly "one
class". Class sizes exercise the rules of uvd/sources/imagenet/pipeline.py: 18 images (one full sentence
plus 2 left over, filled), 16 (exactly one sentence) and 6 (too small: skipped rows).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "images"

# class folder -> (photo, number of crops)
CLASSES = {"cat": ("chelsea_cat.jpg", 18), "temple": ("china.jpg", 16), "coffee_cup": ("coffee.jpg", 6)}


def crops(photo: Image.Image, count: int, seed: int) -> list[Image.Image]:
    """`count` random crops covering 40-80% of the shorter side, aspect 3:4..4:3, longest side 160."""
    rng = np.random.default_rng(seed)
    w, h = photo.size
    out = []
    for _ in range(count):
        side = rng.uniform(0.4, 0.8) * min(w, h)
        aspect = rng.uniform(0.75, 4 / 3)
        cw, ch = min(w, int(side * aspect**0.5)), min(h, int(side / aspect**0.5))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = photo.crop((x, y, x + cw, y + ch))
        crop.thumbnail((160, 160), Image.Resampling.LANCZOS)
        out.append(crop)
    return out


def main() -> int:
    total = 0
    for seed, (name, (photo_name, count)) in enumerate(CLASSES.items()):
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        photo = Image.open(PHOTOS / photo_name).convert("RGB")
        for i, crop in enumerate(crops(photo, count, seed)):
            path = folder / f"{name}_{i:02d}.JPEG"
            crop.save(path, format="JPEG", quality=85)
            total += path.stat().st_size
        print(f"{name}: {count} crops of {photo_name}")
    print(f"total {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
