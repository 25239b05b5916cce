"""A labelled near-duplicate set for measuring the checks: base images, their edits, cut clips.

Base images are the sample photos (uvd/sample/images) plus seeded procedural pictures (smooth colour
fields, shapes, texture); each base gets the edits a crawl produces: JPEG re-encodes, down-then-up
resizes, crops of a few percent, slight colour shifts and watermarks. Edits of one base are
near-duplicates of it; different bases are distinct. Used by benchmarks/bench_quality.py (the
numbers in the README) and, at a small size, by tests/quality.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample" / "images"
SIZE = 256


def sample_photos(limit: int | None = None) -> list[np.ndarray]:
    """The shipped sample photos, centre-cropped to 256x256 RGB."""
    from uvd.transforms.image import to_square_rgb

    files = sorted(p for p in SAMPLE_IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [to_square_rgb(p.read_bytes(), SIZE)[0] for p in files[:limit]]


def procedural(seed: int) -> np.ndarray:
    """A seeded 256x256 picture with photo-like structure: a smooth field, shapes, some texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    for _ in range(4):  # low-frequency colour field
        fx, fy, ph = rng.uniform(0.3, 3.0), rng.uniform(0.3, 3.0), rng.uniform(0, 2 * np.pi)
        img += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)[..., None] * rng.uniform(20, 60, 3)
    img += rng.uniform(60, 190, 3)
    for _ in range(rng.integers(3, 9)):  # shapes
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cx, cy = (int(v) for v in rng.integers(0, SIZE, 2))
        r = int(rng.integers(10, 80))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, color, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
    img += rng.normal(0, rng.uniform(2, 12), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- edits -------------------------------------------------------------------------------------------
def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def resize(img: np.ndarray, side: int) -> np.ndarray:
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def crop(img: np.ndarray, fraction: float, corner: int = 0) -> np.ndarray:
    """Cut `fraction` of each side's length (from one corner or centred), then resize back."""
    cut = max(1, int(round(SIZE * fraction)))
    y0, x0 = [(0, 0), (cut, cut), (0, cut), (cut, 0), (cut // 2, cut // 2)][corner % 5]
    part = img[y0 : y0 + SIZE - cut, x0 : x0 + SIZE - cut]
    return cv2.resize(part, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def colour(img: np.ndarray, gains: tuple[float, float, float], offset: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * np.array(gains, np.float32) + offset, 0, 255).astype(np.uint8)


def watermark(img: np.ndarray, text: str = "(c) stock", alpha: float = 0.5, where: str = "corner") -> np.ndarray:
    """Blend white text (corner) or a diagonal band of text (centre) into the image."""
    mark = img.copy()
    if where == "corner":
        cv2.putText(mark, text, (SIZE - 150, SIZE - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    else:
        for y in range(60, SIZE, 80):
            cv2.putText(mark, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return (img * (1 - alpha) + mark * alpha).astype(np.uint8)


EDITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg90": lambda x: jpeg(x, 90),
    "jpeg70": lambda x: jpeg(x, 70),
    "jpeg50": lambda x: jpeg(x, 50),
    "jpeg30": lambda x: jpeg(x, 30),
    "resize128": lambda x: resize(x, 128),
    "resize96": lambda x: resize(x, 96),
    "crop2": lambda x: crop(x, 0.02, 1),
    "crop4": lambda x: crop(x, 0.04, 4),
    "crop5corner": lambda x: crop(x, 0.05, 0),
    "warm": lambda x: colour(x, (1.08, 1.0, 0.92), 0),
    "bright": lambda x: colour(x, (1.0, 1.0, 1.0), 18),
    "contrast": lambda x: colour(x, (0.85, 0.85, 0.85), 10),
    "wm_corner": lambda x: watermark(x),
    "wm_band": lambda x: watermark(x, "SAMPLE", 0.35, "band"),
    "jpeg50_crop3": lambda x: jpeg(crop(x, 0.03, 2), 50),
}


def near_duplicate_set(
    procedural_count: int = 300, photos: int | None = None, seed: int = 0, edits: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 (N,256,256,3), base index per image, edit name per image ("" = the base))."""
    bases = sample_photos(photos) + [procedural(seed * 100_003 + i) for i in range(procedural_count)]
    names = list(EDITS) if edits is None else edits
    images, labels, kinds = [], [], []
    for b, base in enumerate(bases):
        images.append(base)
        labels.append(b)
        kinds.append("")
        for name in names:
            images.append(EDITS[name](base))
            labels.append(b)
            kinds.append(name)
    return np.stack(images), np.array(labels), kinds


def cut_clips(
    bases: list[np.ndarray], frames_per_shot: tuple[int, int] = (5, 20), seed: int = 0, frames: int = 16
) -> tuple[np.ndarray, set[int]]:
    """Shots of slowly panning/zooming stills, concatenated: frames (T,256,256,3) and the cut indices
    (a cut at t means frame t starts a new shot). A video-like stand-in with known cuts."""
    rng = np.random.default_rng(seed)
    out, cuts = [], set()
    for i, base in enumerate(bases):
        n = int(rng.integers(*frames_per_shot))
        big = cv2.resize(base, (SIZE + 64, SIZE + 64), interpolation=cv2.INTER_LINEAR)
        dx, dy = rng.uniform(-2.5, 2.5, 2)
        if i:
            cuts.add(len(out))
        for t in range(n):
            x0 = int(np.clip(32 + dx * t, 0, 64))
            y0 = int(np.clip(32 + dy * t, 0, 64))
            out.append(jpeg(big[y0 : y0 + SIZE, x0 : x0 + SIZE], 80))
    return np.stack(out), cuts
