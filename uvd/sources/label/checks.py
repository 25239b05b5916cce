"""Sanity checks on expert outputs (pure numpy): a degenerate output raises Degenerate -> a "skipped" row.

A constant depth map renders as one flat gray, a one-class map as one flat colour, an empty edge
map as black: as sentences they teach the model nothing but "copy a constant", so they are
skipped with a reason instead. Thresholds are config options (uvd.sources.label.pipeline.Config).
"""

from __future__ import annotations

import numpy as np

from uvd.sources.label.handler import Degenerate


def check_depth(
    depth: np.ndarray, min_valid: float = 0.5, min_relative_range: float = 1e-3, disparity: bool = False
) -> None:
    """Depth or disparity (H, W): enough valid pixels, and not constant.

    Valid = finite and > 0; for disparity also 0 (infinitely far, e.g. sky: it renders black,
    which is where min-max puts the farthest pixels anyway).
    Constant = (max - min) of the valid values below `min_relative_range` of their largest magnitude.
    """
    d = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(d) & ((d >= 0) if disparity else (d > 0))
    frac = float(valid.mean()) if d.size else 0.0
    if frac < min_valid or not valid.any():
        raise Degenerate("too_little_depth", f"{frac:.1%} valid pixels < {min_valid:.0%}")
    values = d[valid]
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= min_relative_range * max(abs(hi), 1e-12):
        raise Degenerate("constant_depth", f"valid range {lo:.4g}..{hi:.4g}")


def check_segmentation(labels: np.ndarray, max_class_fraction: float = 0.99) -> None:
    """Class map (H, W): no single class may cover more than `max_class_fraction` of the pixels."""
    counts = np.bincount(np.asarray(labels).astype(np.int64).ravel())
    top = int(counts.argmax())
    frac = counts[top] / max(int(counts.sum()), 1)
    if frac > max_class_fraction:
        raise Degenerate("single_class", f"class {top} covers {frac:.1%} > {max_class_fraction:.0%}")


def check_normals(normals: np.ndarray, min_valid: float = 0.5, min_spread: float = 1e-2) -> None:
    """Normals (H, W, 3): enough non-zero vectors, and not all pointing the same way.

    Spread = mean distance of the unit vectors from their mean direction.
    """
    n = np.asarray(normals, dtype=np.float64)
    length = np.linalg.norm(n, axis=-1)
    valid = np.isfinite(length) & (length > 1e-6)
    frac = float(valid.mean()) if valid.size else 0.0
    if frac < min_valid:
        raise Degenerate("too_few_normals", f"{frac:.1%} valid pixels < {min_valid:.0%}")
    unit = n[valid] / length[valid][:, None]
    spread = float(np.linalg.norm(unit - unit.mean(axis=0), axis=1).mean())
    if spread < min_spread:
        raise Degenerate("constant_normals", f"spread {spread:.2g} < {min_spread:.2g}")


def check_edges(edges: np.ndarray, min_fraction: float = 0.002) -> None:
    """Edge map (H, W) or rendered (H, W, 3), white = edge: at least `min_fraction` edge pixels
    (0.2% of 256 x 256 = 131 px, about half a line across the image)."""
    e = np.asarray(edges)
    e = e.max(axis=-1) if e.ndim == 3 else e
    on = e > (127 if e.dtype == np.uint8 else 0.5)
    frac = float(on.mean()) if on.size else 0.0
    if frac < min_fraction:
        raise Degenerate("empty_edges", f"{frac:.3%} edge pixels < {min_fraction:.2%}")
