"""Video stage throughput: needed frames out per CPU-second, vs OpenCV decoding every frame.

    .venv/bin/python benchmarks/bench_video.py

Two H.264 videos (640x360, 30 fps, x264 default GOP 250, a real photo panning under a frame
counter) are made first: 30 s (Kinetics-like) and 90 s (longer web video). For each, both
sides produce the same 256x256 PNG frames, those of one 16-frame clip per stride 10/20/30 as the
stage plans them (48 frames):
- the stage: uvd.sources.video.pipeline plan_video + DecodeClips (decord, one forward pass over the
  wanted frames with seeking, scaled while decoding, one decode thread);
- the baseline: cv2.VideoCapture decoding every frame in order (grab), converting only the needed
  ones (retrieve), then the same resize + crop + PNG.
H.264 still decodes every frame from the keyframe before a wanted one, so the gain grows with the
share of the video the clips do not cover. CPU time of the process (all threads) is the clock, so
figures are per core; runs are interleaved, best of REPEATS. The frame counters of both sides'
outputs are checked against the plan.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402  (before decord: see uvd/sources/video/pipeline.py)
import numpy as np  # noqa: E402

from uvd.core.outputs import IMAGES  # noqa: E402
from uvd.sample.videos.make_videos import pan_zoom, read_counter, write_video  # noqa: E402
from uvd.sources.video import pipeline as v  # noqa: E402
from uvd.transforms.image import decode_png, encode_png, resize_crop  # noqa: E402

WIDTH, HEIGHT, FPS, REPEATS = 640, 360, 30, 2
VIDEOS = {"30 s": 30 * FPS, "90 s": 90 * FPS}


def make_video(path: Path, frames: int) -> None:
    photo = cv2.imread(str(REPO / "uvd" / "sample" / "images" / "china.jpg"))[..., ::-1]
    write_video(
        path,
        pan_zoom(np.ascontiguousarray(photo), frames, WIDTH, HEIGHT, (1.0, 1.5), (0.0, 1.0)),
        fps=FPS,
        crf=23,
        preset="superfast",
    )


def _video(path: Path) -> dict:
    return {"path": str(path), "video_id": "bench", "start": None, "end": None, "split": None}


def stage(path: Path, cfg: v.Config) -> list[bytes]:
    decode = v.DecodeClips(cfg)
    return [row["image"] for task in v.plan_video(_video(path), cfg) for tag, row in decode(task) if tag == IMAGES]


def stage_per_stride(path: Path, cfg: v.Config) -> list[bytes]:
    """The stage with a decode pass per stride instead of one per video (for the record)."""
    return [png for stride in cfg.strides for png in stage(path, replace(cfg, strides=[stride]))]


def baseline(path: Path, needed: set[int]) -> list[bytes]:
    """Decode every frame (grab); convert only the needed ones (retrieve): OpenCV at its best."""
    cap = cv2.VideoCapture(str(path))
    out, index = [], 0
    while cap.grab():
        if index in needed:
            ok, bgr = cap.retrieve()
            if ok:
                out.append(encode_png(resize_crop(np.ascontiguousarray(bgr[..., ::-1]), 256)))
        index += 1
    cap.release()
    return out


def best_rates(runs: dict[str, tuple]) -> tuple[dict[str, float], dict[str, list[bytes]]]:
    """Frames per CPU-second of each run, best of REPEATS, interleaved so that a busy spell of the
    machine hits them alike."""
    best = {name: 0.0 for name in runs}
    frames: dict[str, list[bytes]] = {}
    for _ in range(REPEATS):
        for name, (fn, *args) in runs.items():
            start = time.process_time()
            frames[name] = fn(*args)
            best[name] = max(best[name], len(frames[name]) / (time.process_time() - start))
    return best, frames


def counters_ok(pngs: list[bytes], needed: list[int]) -> bool:
    return sorted(read_counter(decode_png(png)) for png in pngs) == needed


def main() -> int:
    cv2.setNumThreads(1)
    cfg = v.Config(input="bench", decode_threads=1, decoder="decord")
    runs, needed = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in VIDEOS.items():
            path = Path(tmp) / f"{frames}.mp4"
            make_video(path, frames)
            tasks = list(v.plan_video(_video(path), cfg))
            needed[name] = sorted({f for t in tasks for _, _, clip in t["clips"] for f in clip})
            runs[f"stage {name}"] = (stage, path, cfg)
            runs[f"baseline {name}"] = (baseline, path, set(needed[name]))
        runs["per_stride 30 s"] = (stage_per_stride, Path(tmp) / f"{VIDEOS['30 s']}.mp4", cfg)
        runs["pyav 90 s"] = (stage, Path(tmp) / f"{VIDEOS['90 s']}.mp4", replace(cfg, decoder="pyav"))
        rates, outputs = best_rates(runs)
    for name in VIDEOS:
        if not (
            counters_ok(outputs[f"stage {name}"], needed[name])
            and counters_ok(outputs[f"baseline {name}"], needed[name])
        ):
            print(f"frame check failed for the {name} video")
            return 1
    print(
        f"({len(needed['30 s'])} frames per video, {WIDTH}x{HEIGHT} H.264, best of {REPEATS}, frame counters "
        f"checked; the stage with one decode pass per stride instead of per video, 30 s video: "
        f"{rates['per_stride 30 s']:.1f} frames/s/core; with decoder=pyav, 90 s video: "
        f"{rates['pyav 90 s']:.1f} frames/s/core)"
    )
    for name, frames in VIDEOS.items():
        ours, base = rates[f"stage {name}"], rates[f"baseline {name}"]
        print(
            f"video ({name}, {frames} frames): {ours:.1f} frames/s/core vs baseline {base:.1f} frames/s/core "
            f"(OpenCV decode every frame, keep needed) -> {ours / base:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
