"""Depth -> gray image: inverse depth, min-max normalised per image to 0..255 (DPT/Prismer style).

Near is bright, far is dark. Invalid pixels (depth <= 0, NaN/inf, or marked in `invalid`) are 0.
Min-max is over the valid pixels of this image only, so the farthest valid pixel is also 0:
absolute scale is not kept (as the field renders depth for in-context tasks).
"""

from __future__ import annotations

import numpy as np


def depth_png_to_meters(png: np.ndarray, scale: float = 1000.0) -> np.ndarray:
    """NYUv2-style uint16 PNG in millimetres -> float32 metres (0 stays 0 = invalid)."""
    png = np.asarray(png)
    if png.ndim == 3:
        png = png[..., 0]
    return png.astype(np.float32) / scale


def render_depth(depth: np.ndarray, invalid: np.ndarray | None = None, inverse: bool = True) -> np.ndarray:
    """(H, W) metric depth (or disparity with inverse=False) -> (H, W, 3) uint8 gray."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    if invalid is not None:
        valid &= ~np.asarray(invalid, dtype=bool)
    out = np.zeros(depth.shape, np.uint8)
    if valid.any():
        values = 1.0 / depth[valid] if inverse else depth[valid]
        lo, hi = values.min(), values.max()
        scaled = (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)
        out[valid] = np.round(scaled * 255.0).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)
