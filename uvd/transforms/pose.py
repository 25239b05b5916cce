"""Human pose: COCO-17 keypoints -> OpenPose-18 skeleton image on a black canvas.

Mapping (OpenPose index <- COCO index): 0<-0 nose, 1<-neck (mean of the shoulders 5, 6),
2<-6, 3<-8, 4<-10 (right arm), 5<-5, 6<-7, 7<-9 (left arm), 8<-12, 9<-14, 10<-16 (right leg),
11<-11, 12<-13, 13<-15 (left leg), 14<-2, 15<-1 (eyes), 16<-4, 17<-3 (ears).
The neck is visible only when both shoulders are; its score is the smaller of theirs.

Drawing follows ControlNet's OpenPose renderer (the one MMPose's openpose visualiser mimics):
the first 17 limbs of the OpenPose limb sequence, each a filled ellipse of width 2*stick_width in
LIMB_COLORS[i] scaled by 0.6, then every joint as a filled circle in JOINT_COLORS[j]. Only joints
with score > score_threshold are drawn, and a limb only when both its joints are. Sizes scale
with the canvas: stick width 4 and radius 4 at 512 px (ControlNet's), so 2 and 2 at 256.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# OpenPose-18 index -> COCO-17 index (-1: the neck, computed).
COCO_TO_OPENPOSE = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

OPENPOSE_NAMES = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)

# OpenPose limb sequence, 0-based joint pairs; ControlNet draws the first 17.
LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# The 18 OpenPose colours (RGB): joint j uses COLORS[j], limb i uses COLORS[i] * LIMB_ALPHA.
COLORS = np.array(
    [
        [255, 0, 0],
        [255, 85, 0],
        [255, 170, 0],
        [255, 255, 0],
        [170, 255, 0],
        [85, 255, 0],
        [0, 255, 0],
        [0, 255, 85],
        [0, 255, 170],
        [0, 255, 255],
        [0, 170, 255],
        [0, 85, 255],
        [0, 0, 255],
        [85, 0, 255],
        [170, 0, 255],
        [255, 0, 255],
        [255, 0, 170],
        [255, 0, 85],
    ],
    dtype=np.uint8,
)
LIMB_ALPHA = 0.6
JOINT_COLORS = COLORS
LIMB_COLORS = np.array([[int(c * LIMB_ALPHA) for c in COLORS[i]] for i in range(len(LIMBS))], np.uint8)


def coco_to_openpose(keypoints: np.ndarray) -> np.ndarray:
    """(P, 17, 3) COCO x, y, score/visibility -> (P, 18, 3) in OpenPose order (neck added)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (17, 3):
        raise ValueError(f"keypoints must be (P, 17, 3), got shape {np.asarray(keypoints).shape}")
    index = np.array([i if i >= 0 else 0 for i in COCO_TO_OPENPOSE])
    out = kp[:, index].copy()
    rs, ls = kp[:, 6], kp[:, 5]
    out[:, 1, :2] = (rs[:, :2] + ls[:, :2]) / 2.0
    out[:, 1, 2] = np.minimum(rs[:, 2], ls[:, 2])
    return out


def default_sizes(height: int, width: int) -> tuple[int, int]:
    """(stick_width, radius): ControlNet's 4 and 4 at 512 px, scaled, at least 1."""
    s = min(height, width) / 512.0
    return max(1, int(round(4 * s))), max(1, int(round(4 * s)))


def render_pose(
    keypoints_coco17: np.ndarray,
    height: int,
    width: int,
    score_threshold: float = 0.3,
    stick_width: int | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """(P, 17, 3) COCO keypoints in canvas pixels -> (H, W, 3) uint8 OpenPose skeletons.

    The third column is a confidence (a model's score, or COCO's visibility 0/1/2: with the
    default threshold, labelled joints v >= 1 are drawn and unlabelled v = 0 are not).
    """
    default_stick, default_radius = default_sizes(height, width)
    stick = default_stick if stick_width is None else int(stick_width)
    rad = default_radius if radius is None else int(radius)
    canvas = np.zeros((height, width, 3), np.uint8)
    people = coco_to_openpose(keypoints_coco17) if np.asarray(keypoints_coco17).size else np.zeros((0, 18, 3))
    visible = people[..., 2] > score_threshold
    for i, (a, b) in enumerate(LIMBS):
        color = tuple(int(c) for c in LIMB_COLORS[i])
        for person, vis in zip(people, visible):
            if not (vis[a] and vis[b]):
                continue
            (xa, ya), (xb, yb) = person[a, :2], person[b, :2]
            length = math.hypot(xa - xb, ya - yb)
            angle = math.degrees(math.atan2(ya - yb, xa - xb))
            center = (int(round((xa + xb) / 2)), int(round((ya + yb) / 2)))
            polygon = cv2.ellipse2Poly(center, (int(round(length / 2)), stick), int(round(angle)), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, color)
    for j in range(18):
        color = tuple(int(c) for c in JOINT_COLORS[j])
        for person, vis in zip(people, visible):
            if vis[j]:
                x, y = person[j, :2]
                cv2.circle(canvas, (int(round(x)), int(round(y))), rad, color, thickness=-1)
    return canvas
