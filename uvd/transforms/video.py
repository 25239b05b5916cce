"""Which frames make a video clip, and how a decoded frame becomes a 256x256 image: pure numpy.

A clip is `length` frames at a fixed frame stride (the LVM's strides are 10, 20 and 30 frames).
Where clips start is drawn from a generator seeded by (seed, video id, stride), so a rerun picks
the same frames and a different video or stride picks independently. Clips of one (video, stride)
never overlap: no frame pair is shown twice at the same stride.

Nothing here decodes video; uvd/sources/video/pipeline.py asks decord for exactly the frames planned here
(at `reduced_size` when the video is larger) and squares them with uvd.transforms.image.resize_crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uvd import hashing

CLIP_LENGTH = 16  # frames per clip = images per sentence
PLACEMENTS = ("random", "even")


@dataclass(frozen=True)
class Clip:
    """One planned clip: `frames` are absolute frame indices in ascending order."""

    stride: int
    index: int  # clip number within its (video, stride), in time order
    frames: tuple[int, ...]


def clip_rng(seed: int, video_id: str, stride: int) -> np.random.Generator:
    """A generator that depends only on (seed, video id, stride): stable across runs and workers."""
    return hashing.seeded_rng(seed, video_id, stride)


def frame_window(frame_starts: np.ndarray, start_s: float | None = None, end_s: float | None = None) -> tuple[int, int]:
    """Frames [lo, hi) whose start time lies in a Kinetics-style [start_s, end_s) segment.

    From the container's per-frame timestamps, not frames / fps, so variable-frame-rate video
    gets the right frames too.
    """
    times = np.asarray(frame_starts, dtype=np.float64)
    eps = 1e-4
    lo = 0 if start_s is None else int(np.searchsorted(times, start_s - eps, side="left"))
    hi = len(times) if end_s is None else int(np.searchsorted(times, end_s - eps, side="left"))
    return lo, max(lo, hi)


def clip_span(stride: int, length: int = CLIP_LENGTH) -> int:
    """Frames a clip covers from its first to its last frame, both included."""
    return (length - 1) * stride + 1


def _starts(room: int, span: int, count: int, placement: str, rng: np.random.Generator) -> list[int]:
    """Offsets of `count` non-overlapping spans in `room` frames: the free frames split into gaps."""
    slack = room - count * span
    if placement == "even":
        gaps = [(slack * (i + 1)) // (count + 1) for i in range(count)]
    else:  # sorted uniform draws: every arrangement of the gaps is reachable
        gaps = sorted(int(g) for g in rng.integers(0, slack + 1, size=count))
    return [gap + i * span for i, gap in enumerate(gaps)]


def plan_clips(
    lo: int,
    hi: int,
    stride: int,
    clips: int,
    rng: np.random.Generator,
    length: int = CLIP_LENGTH,
    min_length: int = CLIP_LENGTH,
    placement: str = "random",
) -> tuple[list[Clip], int]:
    """Plan up to `clips` clips of `length` frames at `stride` inside frames [lo, hi).

    `clips=0` asks for as many non-overlapping clips as fit. When not even one full clip fits,
    one shorter clip of the frames that fit is planned if it has at least `min_length` frames.
    Returns (clips, missing): `missing` counts the clips asked for that did not fit, so the caller
    records each as a skipped row instead of dropping it silently.
    """
    if stride < 1 or length < 1 or not 1 <= min_length <= length or clips < 0:
        raise ValueError(f"bad clip plan: stride={stride} length={length} min_length={min_length} clips={clips}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    room = max(hi - lo, 0)
    wanted = max(clips, 1)
    span = clip_span(stride, length)
    fit = room // span
    if fit == 0:
        short = (room - 1) // stride + 1 if room > 0 else 0
        if short < min_length:
            return [], wanted
        length, span, fit = short, clip_span(stride, short), 1
    count = fit if clips == 0 else min(clips, fit)
    offsets = _starts(room, span, count, placement, rng)
    planned = [Clip(stride, i, tuple(lo + off + k * stride for k in range(length))) for i, off in enumerate(offsets)]
    return planned, (0 if clips == 0 else clips - count)


def reduced_size(width: int, height: int, size: int, mode: str = "crop") -> tuple[int, int] | None:
    """The (width, height) to ask the decoder for so no full-size frame is ever made, or None.

    "crop": shorter side -> `size`, keeping aspect (the center crop comes after);
    "squash": straight to size x size. None when the video is not larger than that already.
    """
    if mode == "squash":
        return (size, size) if width > size or height > size else None
    short = min(width, height)
    if short <= size:
        return None
    scale = size / short
    return max(size, round(width * scale)), max(size, round(height * scale))


def group_clips(clips: list[Clip], per_task: int) -> list[list[Clip]]:
    """Clips of one video (any strides) in groups of `per_task`, neighbours in time together.

    A group is decoded in one forward pass over the union of its frames, so clips whose spans
    overlap (strides 10/20/30 of a short video) share the decoding of the frames between them.
    """
    ordered = sorted(clips, key=lambda c: (c.frames[0], c.stride, c.index))
    return [ordered[i : i + per_task] for i in range(0, len(ordered), per_task)]
