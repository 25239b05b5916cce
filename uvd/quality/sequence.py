"""Checks on the frames of one sentence (video clips, orbits, sequences), from 16x16 luma thumbnails.

    frozen   consecutive frames whose thumbnails differ by less than `frozen_mad` grey levels on
             average (a stalled stream, a still, a duplicated frame)
    blank    frames whose luma spread (std of the thumbnail) is below `blank_std`: black, white or
             one flat colour (fades, slates, dead cameras); `black` when also darker than 16
    cut      a scene cut between frames t-1 and t: the thumbnail change is above `cut_mad` and at
             least `cut_ratio` times the median change of the window (a fast pan moves every
             frame a lot, a cut moves one pair much more than the others)

Thumbnails are what the fingerprint step already computed, so the checks cost microseconds per
sentence. `cut_windows` turns cut positions into the sub-windows between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SequenceReport:
    frozen: list[int] = field(default_factory=list)  # t: frame t repeats frame t-1
    blank: list[int] = field(default_factory=list)
    black: list[int] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # t: frame t starts a new shot
    max_change: float = 0.0

    def flags(self) -> list[str]:
        return [name for name in ("frozen", "blank", "cuts") if getattr(self, name)]


def frame_changes(thumbs: np.ndarray) -> np.ndarray:
    """(T, s, s) uint8 thumbnails -> (T-1,) mean absolute grey-level change between neighbours."""
    t = np.asarray(thumbs, np.float32)
    if len(t) < 2:
        return np.zeros(0, np.float32)
    return np.abs(np.diff(t, axis=0)).mean(axis=(1, 2))


def detect_cuts(changes: np.ndarray, cut_mad: float = 18.0, cut_ratio: float = 3.0) -> list[int]:
    changes = np.asarray(changes, np.float32)
    if changes.size == 0:
        return []
    med = float(np.median(changes))
    hits = np.nonzero((changes > cut_mad) & (changes >= cut_ratio * max(med, 1.0)))[0]
    return [int(i) + 1 for i in hits]


def check_sequence(
    thumbs: np.ndarray, frozen_mad: float = 0.5, blank_std: float = 4.0, cut_mad: float = 18.0, cut_ratio: float = 3.0
) -> SequenceReport:
    thumbs = np.asarray(thumbs)
    changes = frame_changes(thumbs)
    flat = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    std, mean = flat.std(axis=1), flat.mean(axis=1)
    blank = [int(i) for i in np.nonzero(std < blank_std)[0]]
    return SequenceReport(
        frozen=[int(i) + 1 for i in np.nonzero(changes < frozen_mad)[0]],
        blank=blank,
        black=[i for i in blank if mean[i] < 16],
        cuts=detect_cuts(changes, cut_mad, cut_ratio),
        max_change=float(changes.max()) if changes.size else 0.0,
    )


def cut_windows(length: int, cuts: list[int], min_frames: int = 2) -> list[tuple[int, int]]:
    """[start, end) shots between cut positions, keeping those of at least `min_frames` frames."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < length), length]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a >= min_frames]
