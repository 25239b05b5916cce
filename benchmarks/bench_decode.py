"""Decode + resize/crop to 256x256, images per second on one core: uvd's path vs plain PIL.

uvd: header check, JPEG decoded at reduced DCT scale (PIL draft), EXIF orientation, RGB, then
area-resize of the centre crop (uvd.transforms.image.to_square_rgb). Baseline: what most
pipelines do, full decode, convert("RGB"), bicubic resize of the shorter side to 256, centre
crop. Inputs: the sample photos upscaled to ~2000 px JPEGs (quality 90) in a temp folder, a
typical LAION original size.

    .venv/bin/python benchmarks/bench_decode.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uvd.transforms.image import encode_png, to_square_rgb  # noqa: E402

SECONDS = 6.0


def make_inputs(folder: Path, long_side: int = 2000, count: int = 12) -> list[bytes]:
    photos = sorted((ROOT / "uvd" / "sample" / "images").glob("*.jpg"))
    out = []
    for path in photos[:count]:
        im = Image.open(path).convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        (folder / path.name).write_bytes(buf.getvalue())
        out.append(buf.getvalue())
    return out


def baseline(data: bytes, size: int = 256) -> np.ndarray:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    scale = size / min(im.size)
    im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))), Image.BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


def uvd_path(data: bytes) -> np.ndarray:
    return to_square_rgb(data, 256, "crop")[0]


def rate(fn, inputs: list[bytes]) -> float:
    for data in inputs[:2]:  # warm up
        fn(data)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        for data in inputs:
            fn(data)
        n += len(inputs)
    return n / (time.perf_counter() - start)


def main() -> None:
    cv2.setNumThreads(1)  # per core: no hidden OpenCV threads
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        sizes = [Image.open(io.BytesIO(d)).size for d in inputs]
        diff = np.mean([np.abs(uvd_path(d).astype(int) - baseline(d).astype(int)).mean() for d in inputs])
        fast = rate(uvd_path, inputs)
        base = rate(baseline, inputs)
        with_png = rate(lambda d: encode_png(uvd_path(d)), inputs)
    print(
        f"inputs: {len(inputs)} JPEGs, {min(max(s) for s in sizes)}-{max(max(s) for s in sizes)} px long side; "
        f"mean |uvd - baseline| = {diff:.2f} / 255"
    )
    print(
        f"decode: {fast:.1f} img/s/core vs baseline {base:.1f} img/s/core (PIL full decode + bicubic resize) "
        f"-> {fast / base:.2f}x"
    )
    print(
        f"decode+png: {with_png:.1f} img/s/core vs baseline {base:.1f} img/s/core (PIL full decode + bicubic resize, "
        f"no encode) -> {with_png / base:.2f}x"
    )


if __name__ == "__main__":
    main()
