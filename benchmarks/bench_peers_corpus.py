"""A deterministic LAION-like corpus for the side-by-side benchmark (benchmarks/bench_peers.py).

Distinct JPEGs cut from the shipped sample photos (random crops, flips, tints), with sizes and
aspect ratios drawn like LAION's (mean ~0.6 MP, landscape 4:3 / 3:2 / 16:9, square, portrait)
and LAION-like JPEG settings: quality 75-95, mostly 4:2:0 with some 4:4:4, some progressive, some
grayscale, some with an EXIF rotation. Bad URLs (a few percent) are 404s, truncated bodies,
HTML pages and refused ports. Same seed -> same bytes, cached under a folder named by its params.

    corpus = build_corpus(distinct=970, seed=0)     # {"images": [bytes...], "stats": {...}}
    urls = corpus_urls(base, refused_base, n=4000, distinct=970, bad_fraction=0.03, seed=0)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("UVD_BENCH_CACHE", "/tmp/uvd-bench-corpus"))
# LAION-ish aspect ratios (w/h) and their shares
ASPECTS = ((1.0, 0.18), (4 / 3, 0.22), (3 / 2, 0.20), (16 / 9, 0.08), (3 / 4, 0.14), (2 / 3, 0.13), (2.0, 0.05))
QUALITIES = ((75, 0.3), (85, 0.3), (90, 0.2), (95, 0.2))
VERSION = 1


def _sources() -> list[np.ndarray]:
    out = []
    for path in sorted((ROOT / "uvd" / "sample" / "images").glob("*.jpg")):
        with Image.open(path) as im:
            if min(im.size) >= 128:
                out.append(np.asarray(im.convert("RGB")))
    return out


def _pick(rng: np.random.Generator, table: tuple) -> float:
    values, weights = zip(*table)
    return values[int(rng.choice(len(values), p=np.asarray(weights) / sum(weights)))]


def _one(rng: np.random.Generator, sources: list[np.ndarray], median_mp: float = 0.45) -> bytes:
    src = sources[int(rng.integers(len(sources)))]
    aspect = _pick(rng, ASPECTS)
    mp = float(np.clip(rng.lognormal(np.log(median_mp), 0.75), 0.06, 4.0))  # 0.45: mean ~0.6 MP
    w = max(128, int(round((mp * 1e6 * aspect) ** 0.5)))
    h = max(128, int(round(w / aspect)))
    sh, sw = src.shape[:2]
    # a random crop of the source with the target aspect, then resized to (w, h)
    cw = int(min(sw, sh * aspect) * rng.uniform(0.6, 1.0))
    ch = max(8, int(cw / aspect))
    y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    im = Image.fromarray(src[y0 : y0 + ch, x0 : x0 + cw]).resize((w, h), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.float32) * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    kind = rng.random()
    if kind < 0.05:
        im = im.convert("L")
    kwargs: dict = {"quality": int(_pick(rng, QUALITIES)), "optimize": bool(rng.random() < 0.3)}
    kwargs["progressive"] = bool(rng.random() < 0.2)
    kwargs["subsampling"] = 0 if rng.random() < 0.15 else 2
    if rng.random() < 0.05:  # a camera photo stored sideways with an EXIF Orientation
        exif = Image.Exif()
        exif[0x0112] = 6
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def build_corpus(distinct: int = 970, seed: int = 0, median_mp: float = 0.45) -> list[bytes]:
    """`distinct` JPEG bodies, generated once and cached (~20 s per 1000 at the default size).

    A smaller median_mp makes a corpus quick to build where only the output count matters (the
    stage's outputs are 256x256 whatever the input size), e.g. peak RSS against distinct images.
    """
    params = [VERSION, distinct, seed] + ([median_mp] if median_mp != 0.45 else [])
    key = hashlib.sha1(json.dumps(params).encode()).hexdigest()[:12]
    folder = CACHE / key
    if (folder / "done").exists():
        return [(folder / f"{i}.jpg").read_bytes() for i in range(distinct)]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = _sources()
    bodies = [_one(rng, sources, median_mp) for _ in range(distinct)]
    for i, body in enumerate(bodies):
        (folder / f"{i}.jpg").write_bytes(body)
    (folder / "done").write_text("ok")
    return bodies


def corpus_stats(bodies: list[bytes]) -> dict:
    mps = []
    for body in bodies:
        with Image.open(io.BytesIO(body)) as im:
            mps.append(im.size[0] * im.size[1] / 1e6)
    return {
        "images": len(bodies),
        "mean_mp": round(float(np.mean(mps)), 3),
        "mean_kb": round(sum(map(len, bodies)) / len(bodies) / 1024, 1),
    }


def url_plan(n: int, distinct: int, bad_fraction: float = 0.03, seed: int = 0) -> list[tuple[str, int]]:
    """n (kind, index) pairs: ("img", k) serves image k; bad kinds: missing, html, trunc, refused."""
    rng = np.random.default_rng(seed + 1)
    bad = ("missing", "html", "trunc", "refused")
    plan = []
    for j in range(n):
        if rng.random() < bad_fraction:
            plan.append((bad[int(rng.integers(len(bad)))], j))
        else:
            plan.append(("img", j % distinct))
    return plan
