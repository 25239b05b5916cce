"""Edge maps as images. Polarity: white edges (255) on a black background (0), as ControlNet's Canny.

`render_edges` runs Canny (thresholds 100, 200, OpenCV's L1 gradient, 3x3 Sobel) on the image
*after* its resize/crop to 256, so edges are 1 px wide at the output size. `render_edge_map`
takes a dataset's edge map (BSDS/BIPED-style gray or probability maps) into the same polarity.
"""

from __future__ import annotations

import cv2
import numpy as np

CANNY_LOW = 100
CANNY_HIGH = 200


def render_edges(image: np.ndarray, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) uint8: 255 on Canny edges, 0 elsewhere."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, low, high)
    return np.repeat(edges[..., None], 3, axis=2)


def render_edge_map(edges: np.ndarray, invert: bool = False, threshold: float | None = None) -> np.ndarray:
    """A given edge map -> (H, W, 3) uint8 white-on-black.

    Accepts uint8/uint16 gray or RGB, bool, or float probabilities in [0, 1]. `invert=True` for
    maps drawn black-on-white. `threshold` (a fraction of full scale) binarises soft maps.
    """
    e = np.asarray(edges)
    if e.ndim == 3:
        e = e[..., :3].max(axis=2)
    if e.ndim != 2:
        raise ValueError(f"edges must be (H, W) or (H, W, C), got shape {np.asarray(edges).shape}")
    if e.dtype == bool:
        v = e.astype(np.float64)
    elif np.issubdtype(e.dtype, np.integer):
        v = e.astype(np.float64) / (65535.0 if e.dtype == np.uint16 else 255.0)
    else:
        v = np.clip(np.nan_to_num(e.astype(np.float64)), 0.0, 1.0)
    if invert:
        v = 1.0 - v
    if threshold is not None:
        v = (v >= threshold).astype(np.float64)
    gray = np.round(v * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)
