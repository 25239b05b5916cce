"""Make the sample videos: slow pans and zooms over the shared photos, a frame counter on each frame.

    .venv/bin/python uvd/sample/videos/make_videos.py      # rewrites uvd/sample/videos/*.mp4

Each frame carries its index twice: as digits for people, and as a strip of 12 black/white cells
below the centre that survives H.264 and the 256 px resize + center crop, so `read_counter` gets the
index back from a pipeline output image (tests and benchmarks use these helpers too). The strip sits
at the centre horizontally and `short/4` below it, each cell `short/16` wide (short = shorter side):
after shorter side -> 256 and a center crop, cells are 16 px at rows 192..208, whatever the aspect.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "images"
CODE_BITS = 12  # frame indices 0..4095


def _strip_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, cell) of the counter strip in a height x width frame."""
    short = min(height, width)
    cell = short // 16
    return height // 2 + short // 4, width // 2 - CODE_BITS * cell // 2, cell


def draw_counter(frame: np.ndarray, index: int) -> np.ndarray:
    """A copy of RGB `frame` with `index` drawn as digits and as the bit strip (bit 0 leftmost)."""
    import cv2

    out = np.array(frame, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    top, left, cell = _strip_box(h, w)
    pad = max(cell // 4, 1)
    out[top - pad : top + cell + pad, left - pad : left + CODE_BITS * cell + pad] = (128, 128, 128)
    for bit in range(CODE_BITS):
        value = 255 if (index >> bit) & 1 else 0
        out[top : top + cell, left + bit * cell : left + (bit + 1) * cell] = value
    scale = min(h, w) / 240
    org = (w // 2 - int(40 * scale), h // 2 - min(h, w) // 4)
    cv2.putText(out, f"{index:04d}", org, cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (0, 0, 0), int(5 * scale) + 1)
    cv2.putText(out, f"{index:04d}", org, cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (255, 255, 255), int(2 * scale) + 1)
    return out


def read_counter(image: np.ndarray) -> int:
    """The frame index drawn by draw_counter, read back from a (resized, center-cropped) image."""
    h, w = image.shape[:2]
    top, left, cell = _strip_box(h, w)
    gray = np.asarray(image, dtype=np.float32).mean(axis=2)
    inset = max(cell // 4, 1)
    value = 0
    for bit in range(CODE_BITS):
        x0 = left + bit * cell
        patch = gray[top + inset : top + cell - inset, x0 + inset : x0 + cell - inset]
        value |= int(patch.mean() > 128) << bit
    return value


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: int = 30, crf: int = 28, preset: str = "medium", gop: int = 250
) -> None:
    """Encode RGB frames as H.264 (yuv420p, B-frames on) in an MP4 with PyAV."""
    import av

    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, "g": str(gop)}
        for frame in _chain(first, frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest


def pan_zoom(
    photo: np.ndarray,
    num_frames: int,
    width: int,
    height: int,
    zoom: tuple[float, float] = (1.0, 1.0),
    pan: tuple[float, float] = (0.0, 1.0),
) -> Iterable[np.ndarray]:
    """Frames of a camera moving slowly over `photo`: the window zooms from zoom[0] to zoom[1]
    (1 = largest window of the output aspect) and pans from pan[0] to pan[1] along the free axis."""
    import cv2

    ph, pw = photo.shape[:2]
    aspect = width / height
    for i in range(num_frames):
        t = i / max(num_frames - 1, 1)
        z = zoom[0] + (zoom[1] - zoom[0]) * t
        win_w = min(pw, ph * aspect) / z
        win_h = win_w / aspect
        p = pan[0] + (pan[1] - pan[0]) * t
        x0 = (pw - win_w) * p
        y0 = (ph - win_h) * (0.5 if win_h < ph else 0.0)
        crop = cv2.getRectSubPix(photo, (int(win_w), int(win_h)), (x0 + win_w / 2, y0 + win_h / 2))
        frame = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        yield draw_counter(frame, i)


def _photo(name: str) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{PHOTOS / name}: run after the shared photos are in uvd/sample/images/")
    return bgr[..., ::-1].copy()


# name -> (photo, frames, width, height, zoom, pan): one fits all strides (16 frames at stride 30
# need 451), one only stride 10 (151), one none: the sample exercises clips and skipped rows.
SAMPLES = {
    "china_pan.mp4": ("china.jpg", 480, 480, 270, (1.0, 1.3), (0.0, 1.0)),
    "coffee_zoom.mp4": ("coffee.jpg", 200, 288, 512, (1.0, 1.8), (0.3, 0.7)),
    "rocket_short.mp4": ("rocket.jpg", 90, 384, 216, (1.2, 1.0), (0.5, 0.5)),
}


def main() -> int:
    total = 0
    for name, (photo, n, w, h, zoom, pan) in SAMPLES.items():
        write_video(HERE / name, pan_zoom(_photo(photo), n, w, h, zoom, pan), crf=30)
        size = (HERE / name).stat().st_size
        total += size
        print(f"{name}: {n} frames {w}x{h}, {size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
