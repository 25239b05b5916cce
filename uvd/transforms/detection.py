"""Detection boxes -> outlines over the image (the paper's colour-coded boxes) or on black, one
fixed colour per class.

Colours: class index c -> BOX_PALETTE[c % 256]: fully saturated, full-value colours whose hue steps
by the golden ratio (hue_c = (c * 0.618034) mod 1, HSV s = 1, v = 1), so neighbouring class ids
get far-apart hues and every outline stands out on black (the ADE20K palette has dark and gray
entries that vanish as 3 px lines); on a photo, saturated full-value hues stand out best too.
Fixed and computed, not random. Classes are contiguous
indices (an adapter maps e.g. COCO category ids to 0..79 by sorted id).
Line width is ~3 px at 256 px and scales with the canvas. Boxes are drawn with plain slice
assignments (4 strips per box, no per-pixel work), in the order given: later boxes on top.
"""

from __future__ import annotations

import numpy as np

from uvd.transforms.segmentation import golden_palette

BOX_PALETTE = golden_palette()


def default_thickness(height: int, width: int) -> int:
    """3 px at 256 px, proportional elsewhere (at least 1)."""
    return max(1, int(round(3 * min(height, width) / 256)))


def box_color(class_index: int, palette: np.ndarray = BOX_PALETTE) -> np.ndarray:
    return np.asarray(palette, np.uint8)[int(class_index) % len(palette)]


def visible_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (N,): which boxes render_boxes draws anything of (positive size, inside the canvas)."""
    c = np.round(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    return (
        (c[:, 2] > c[:, 0])
        & (c[:, 3] > c[:, 1])
        & (c[:, 2] > 0)
        & (c[:, 3] > 0)
        & (c[:, 0] < width)
        & (c[:, 1] < height)
    )


def render_boxes(
    boxes: np.ndarray,
    classes: np.ndarray,
    height: int,
    width: int,
    thickness: int | None = None,
    palette: np.ndarray = BOX_PALETTE,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """(N, 4) boxes as x0, y0, x1, y1 in canvas pixels (x1, y1 exclusive) -> (H, W, 3) uint8.

    Drawn over a copy of `background` (uint8 (H, W, 3), the image) or, when None, on black.
    The outline lies inside the box: rows y0..y0+t-1 and y1-t..y1-1, columns likewise. Parts of a
    box outside the canvas are clipped (an edge outside the canvas is not drawn at the border).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    if len(boxes) != len(classes):
        raise ValueError(f"{len(boxes)} boxes but {len(classes)} classes")
    t = default_thickness(height, width) if thickness is None else int(thickness)
    if background is None:
        canvas = np.zeros((height, width, 3), np.uint8)
    else:
        canvas = np.array(background, dtype=np.uint8, copy=True)
        if canvas.shape != (height, width, 3):
            raise ValueError(f"background {canvas.shape} vs canvas {(height, width, 3)}")
    corners = np.round(boxes).astype(np.int64)
    palette = np.asarray(palette, np.uint8)
    for (x0, y0, x1, y1), cls in zip(corners, classes):
        if x1 <= x0 or y1 <= y0:
            continue
        color = palette[int(cls) % len(palette)]
        tt = min(t, x1 - x0, y1 - y0)
        cx0, cx1 = max(x0, 0), min(x1, width)
        cy0, cy1 = max(y0, 0), min(y1, height)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        for r0, r1 in ((y0, y0 + tt), (y1 - tt, y1)):  # top, bottom strips
            r0, r1 = max(r0, 0), min(r1, height)
            if r1 > r0:
                canvas[r0:r1, cx0:cx1] = color
        for c0, c1 in ((x0, x0 + tt), (x1 - tt, x1)):  # left, right strips
            c0, c1 = max(c0, 0), min(c1, width)
            if c1 > c0:
                canvas[cy0:cy1, c0:c1] = color
    return canvas
