"""Learnability in token space: what the tokenizer keeps of an image.

PSNR of the decoded tokens against the image the tokenizer saw says how much the model can ever
learn of it (a 256-token image at 20 dB is a blur; text and fine texture go first); the number of
distinct codes among its 256 says whether the grid carries information (a flat image is one code
repeated). Both are per image; `Histogram` bins them per source for the card with fixed edges, so
partial histograms from many workers add up exactly.
"""

from __future__ import annotations

import numpy as np

PSNR_EDGES = tuple(float(x) for x in range(10, 42, 2))  # dB; below 10 and above 40 fall in the ends
DIVERSITY_EDGES = (1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf for identical ones, capped at 99)."""
    err = np.mean((np.asarray(a, np.float32) - np.asarray(b, np.float32)) ** 2)
    return 99.0 if err == 0 else float(min(99.0, 10.0 * np.log10(255.0**2 / err)))


def distinct_codes(tokens: np.ndarray) -> int:
    """How many different codes an image's 256 tokens use (1..256)."""
    return int(np.unique(np.asarray(tokens)).size)


def bin_index(value: float, edges: tuple[float, ...]) -> int:
    """0 below edges[0], i for edges[i-1] <= value < edges[i], len(edges) at or above the last edge."""
    return int(np.searchsorted(np.asarray(edges), value, side="right"))


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    def f(x: float) -> str:
        return f"{x:g}"

    return [f"< {f(edges[0])}"] + [f"{f(a)}-{f(b)}" for a, b in zip(edges, edges[1:])] + [f">= {f(edges[-1])}"]


def add_to_histogram(hist: list[int] | None, value: float, edges: tuple[float, ...]) -> list[int]:
    hist = list(hist) if hist else [0] * (len(edges) + 1)
    hist[bin_index(value, edges)] += 1
    return hist


def spark(hist: list[int]) -> str:
    """A one-line text histogram for the card (one block character per bin)."""
    blocks = " ▁▂▃▄▅▆▇█"
    top = max(hist) if hist and max(hist) else 1
    return "".join(blocks[int(round(8 * c / top))] if c else "·" for c in hist)
