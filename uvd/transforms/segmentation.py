"""Segmentation label maps -> RGB with a fixed, documented palette (ADE20K-150 as in MMSegmentation).

Palette: the 150 colours of MMSegmentation's `ADE20KDataset.METAINFO["palette"]`, in class order
(wall, building, sky, floor, tree, ...), the palette ControlNet's segmentation model was trained on.
Label convention: class index c in 0..149 (MMSeg's, after `reduce_zero_label`) -> ADE20K_PALETTE[c];
the ignore index -> black. Indices >= 150 (e.g. COCO's 80 things + stuff) wrap around the palette.
An ADE20K-style PNG (0 = ignore/other, 1..150 = classes) converts with `ade20k_png_to_labels`.
Instance maps (one colour per object, not per class) use INSTANCE_PALETTE: fully saturated colours
whose hue steps by the golden ratio (colour i = HSV((i * 0.618034) mod 1, 1, 1)), so they never
look like a semantic map and neighbouring ids differ.

Render *after* resizing the label map with nearest neighbour (uvd.transforms.image.apply_geometry
with nearest=True), so every output pixel is exactly a palette colour: no blended colours.
"""

from __future__ import annotations

import colorsys

import numpy as np

IGNORE_INDEX = 255

# fmt: off
ADE20K_PALETTE = np.array([
    120, 120, 120, 180, 120, 120, 6, 230, 230, 80, 50, 50, 4, 200, 3, 120, 120, 80, 140, 140, 140,
    204, 5, 255, 230, 230, 230, 4, 250, 7, 224, 5, 255, 235, 255, 7, 150, 5, 61, 120, 120, 70,
    8, 255, 51, 255, 6, 82, 143, 255, 140, 204, 255, 4, 255, 51, 7, 204, 70, 3, 0, 102, 200,
    61, 230, 250, 255, 6, 51, 11, 102, 255, 255, 7, 71, 255, 9, 224, 9, 7, 230, 220, 220, 220,
    255, 9, 92, 112, 9, 255, 8, 255, 214, 7, 255, 224, 255, 184, 6, 10, 255, 71, 255, 41, 10,
    7, 255, 255, 224, 255, 8, 102, 8, 255, 255, 61, 6, 255, 194, 7, 255, 122, 8, 0, 255, 20,
    255, 8, 41, 255, 5, 153, 6, 51, 255, 235, 12, 255, 160, 150, 20, 0, 163, 255, 140, 140, 140,
    250, 10, 15, 20, 255, 0, 31, 255, 0, 255, 31, 0, 255, 224, 0, 153, 255, 0, 0, 0, 255,
    255, 71, 0, 0, 235, 255, 0, 173, 255, 31, 0, 255, 11, 200, 200, 255, 82, 0, 0, 255, 245,
    0, 61, 255, 0, 255, 112, 0, 255, 133, 255, 0, 0, 255, 163, 0, 255, 102, 0, 194, 255, 0,
    0, 143, 255, 51, 255, 0, 0, 82, 255, 0, 255, 41, 0, 255, 173, 10, 0, 255, 173, 255, 0,
    0, 255, 153, 255, 92, 0, 255, 0, 255, 255, 0, 245, 255, 0, 102, 255, 173, 0, 255, 0, 20,
    255, 184, 184, 0, 31, 255, 0, 255, 61, 0, 71, 255, 255, 0, 204, 0, 255, 194, 0, 255, 82,
    0, 10, 255, 0, 112, 255, 51, 0, 255, 0, 194, 255, 0, 122, 255, 0, 255, 163, 255, 153, 0,
    0, 255, 10, 255, 112, 0, 143, 255, 0, 82, 0, 255, 163, 255, 0, 255, 235, 0, 8, 184, 170,
    133, 0, 255, 0, 255, 92, 184, 0, 255, 255, 0, 31, 0, 184, 255, 0, 214, 255, 255, 0, 112,
    92, 255, 0, 0, 224, 255, 112, 224, 255, 70, 184, 160, 163, 0, 255, 153, 0, 255, 71, 255, 0,
    255, 0, 163, 255, 204, 0, 255, 0, 143, 0, 255, 235, 133, 255, 0, 255, 0, 235, 245, 0, 255,
    255, 0, 122, 255, 245, 0, 10, 190, 212, 214, 255, 0, 0, 204, 255, 20, 0, 255, 255, 255, 0,
    0, 153, 255, 0, 41, 255, 0, 255, 204, 41, 0, 255, 41, 255, 0, 173, 0, 255, 0, 245, 255,
    71, 0, 255, 122, 0, 255, 0, 255, 184, 0, 92, 255, 184, 255, 0, 0, 133, 255, 255, 214, 0,
    25, 194, 194, 102, 255, 0, 92, 0, 255,
], dtype=np.uint8).reshape(150, 3)
# fmt: on


def golden_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: colour i = HSV((i * 0.618034) mod 1, 1, 1), bright and far apart in hue."""
    rgb = [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 1.0, 1.0) for i in range(n)]
    return np.round(np.array(rgb) * 255).astype(np.uint8)


INSTANCE_PALETTE = golden_palette()


def ade20k_png_to_labels(png: np.ndarray) -> np.ndarray:
    """ADE20K-style PNG values (0 = other/ignore, 1..150 = classes) -> 0..149 with IGNORE_INDEX."""
    png = np.asarray(png)
    if png.ndim == 3:
        png = png[..., 0]
    labels = png.astype(np.int32) - 1
    labels[png == 0] = IGNORE_INDEX
    return labels


def render_segmentation(
    labels: np.ndarray, ignore_index: int | None = IGNORE_INDEX, palette: np.ndarray = ADE20K_PALETTE
) -> np.ndarray:
    """(H, W) integer class map -> (H, W, 3) uint8: class c -> palette[c % len(palette)], ignore -> black.

    Negative labels are treated as ignore as well (no colour for "no class").
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got {labels.dtype}")
    palette = np.asarray(palette, dtype=np.uint8)
    lab = labels.astype(np.int64)
    ignore = lab < 0
    if ignore_index is not None:
        ignore |= lab == ignore_index
    # Lookup through a table with a black row at the end for ignored pixels.
    table = np.concatenate([palette, np.zeros((1, 3), np.uint8)])
    index = np.where(ignore, len(palette), np.mod(lab, len(palette)))
    return table[index]


def render_instance_ids(instance_ids: np.ndarray, palette: np.ndarray = INSTANCE_PALETTE) -> np.ndarray:
    """(H, W) instance id map (0 = no instance, i >= 1 = instance i) -> RGB, instance i -> palette[i - 1]."""
    ids = np.asarray(instance_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"instance ids must be integers, got {ids.dtype}")
    return render_segmentation(ids.astype(np.int64) - 1, ignore_index=None, palette=palette)
