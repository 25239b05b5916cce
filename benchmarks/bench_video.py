"""Video stage throughput: needed frames out per CPU-second, vs OpenCV decoding every frame.

    .venv/bin/python benchmarks/bench_video.py

One H.264 video (960x540, 30 s at 30 fps, x264 default GOP 250, real photo content panning) is made
first. Both sides then produce the same 256x256 PNG frames, those of one 16-frame clip per stride
10/20/30 planned by the stage (48 of 900 frames):
- the stage: uvd.pipelines.video plan_video + DecodeClips (decord, one forward pass over the
  wanted frames with seeking, scaled while decoding, one decode thread);
- the baseline: cv2.VideoCapture reading every frame in order, keeping the needed ones, then the
  same resize + crop + PNG.
CPU time of the process (all threads) is the clock, so the figure is per core and does not depend
on what else the machine runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402  (before decord: see uvd/pipelines/video.py)
import numpy as np  # noqa: E402

from uvd.pipelines import common  # noqa: E402
from uvd.pipelines import video as v  # noqa: E402
from uvd.sample.videos.make_videos import pan_zoom, read_counter, write_video  # noqa: E402
from uvd.transforms.image import decode_png, encode_png, resize_crop  # noqa: E402

WIDTH, HEIGHT, FRAMES, REPEATS = 960, 540, 900, 3


def make_video(path: Path) -> None:
    photo = cv2.imread(str(REPO / "uvd" / "sample" / "images" / "china.jpg"))[..., ::-1]
    write_video(path, pan_zoom(np.ascontiguousarray(photo), FRAMES, WIDTH, HEIGHT, (1.0, 1.5), (0.0, 1.0)),
                crf=23, preset="superfast")


def stage(path: Path, cfg: v.Config) -> list[bytes]:
    video = {"path": str(path), "video_id": "bench", "start": None, "end": None, "split": None}
    decode = v.DecodeClips(cfg)
    return [row["image"] for task in v.plan_video(video, cfg) for tag, row in decode(task) if tag == common.IMAGES]


def baseline(path: Path, needed: set[int]) -> list[bytes]:
    cap = cv2.VideoCapture(str(path))
    out, index = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if index in needed:
            out.append(encode_png(resize_crop(np.ascontiguousarray(bgr[..., ::-1]), 256)))
        index += 1
    cap.release()
    return out


def per_cpu_second(fn, *args) -> tuple[float, list[bytes]]:
    best = 0.0
    for _ in range(REPEATS):
        start = time.process_time()
        frames = fn(*args)
        best = max(best, len(frames) / (time.process_time() - start))
    return best, frames


def main() -> int:
    cv2.setNumThreads(1)
    cfg = v.Config(input="bench", decode_threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        make_video(path)
        tasks = list(v.plan_video({"path": str(path), "video_id": "bench", "start": None, "end": None,
                                   "split": None}, cfg))
        needed = sorted({f for t in tasks for _, _, frames in t["clips"] for f in frames})
        ours, ours_frames = per_cpu_second(stage, path, cfg)
        base, base_frames = per_cpu_second(baseline, path, set(needed))
    got = sorted(read_counter(decode_png(png)) for png in ours_frames)
    ref = sorted(read_counter(decode_png(png)) for png in base_frames)
    if got != needed or ref != needed:
        print(f"frame check failed: stage {got[:5]}..., baseline {ref[:5]}..., needed {needed[:5]}...")
        return 1
    print(f"({len(needed)} of {FRAMES} frames of a {WIDTH}x{HEIGHT} H.264 video, best of {REPEATS}, "
          f"frame counters checked on both sides)")
    print(f"video: {ours:.1f} frames/s/core vs baseline {base:.1f} frames/s/core "
          f"(OpenCV decode every frame, keep needed) -> {ours / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
