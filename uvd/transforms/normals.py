"""Surface normals -> RGB = (n + 1) / 2 * 255 (the convention of NYUv2/Omnidata renders).

Normals are re-normalised to unit length first (resizing with interpolation shortens them);
pixels with no normal (zero length, NaN) are black.
"""

from __future__ import annotations

import numpy as np


def normals_png_to_vectors(png: np.ndarray) -> np.ndarray:
    """An RGB normals PNG (uint8 or uint16, (n+1)/2 encoded) -> float32 vectors in [-1, 1].

    An all-zero pixel (no normal) decodes to the zero vector, so it stays black when rendered.
    """
    png = np.asarray(png)
    top = 65535.0 if png.dtype == np.uint16 else 255.0
    vec = png[..., :3].astype(np.float32) / top * 2.0 - 1.0
    vec[~png[..., :3].any(axis=-1)] = 0.0
    return vec


def render_normals(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) float normals (any length) -> (H, W, 3) uint8 RGB."""
    n = np.asarray(normals, dtype=np.float64)
    if n.ndim != 3 or n.shape[2] != 3:
        raise ValueError(f"normals must be (H, W, 3), got shape {n.shape}")
    length = np.linalg.norm(n, axis=2, keepdims=True)
    valid = np.isfinite(length[..., 0]) & (length[..., 0] > 1e-6)
    unit = np.divide(n, length, out=np.zeros_like(n), where=valid[..., None])
    rgb = np.clip(np.round((unit + 1.0) * 0.5 * 255.0), 0, 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb
