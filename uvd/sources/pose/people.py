"""Which people the pose stage looks at, and which of its predictions it keeps (no mmpose, no Beam).

- Inputs: every image under a folder (one whole-image box each), or the images of a COCO JSON
  with its person boxes (crowd boxes and boxes under `min_box_size` left out).
- Selection: a predicted joint outside the image gets score 0 (it cannot be drawn there); a person
  is kept when the mean of its 17 scores reaches `person_threshold` and at least `min_keypoints`
  (and at least one) joints score above `keypoint_threshold`, so no skeleton is drawn empty. An
  image with nobody kept is a "no_person" skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from uvd.core import files

NUM_KEYPOINTS = 17


def whole_image_box(height: int, width: int) -> np.ndarray:
    """(1, 4) x0, y0, x1, y1 covering the image: the box when no detector or labels give one."""
    return np.array([[0.0, 0.0, float(width), float(height)]], np.float32)


def coco_person_boxes(anns: list[dict], min_box_size: float = 16.0, max_people: int = 20) -> np.ndarray:
    """COCO annotations (bbox x, y, w, h) -> float32 (N, 4) x0, y0, x1, y1, largest first.

    Crowd regions (iscrowd 1) hold many people in one box and top-down models need one per box.
    """
    boxes = [a["bbox"] for a in anns if not a.get("iscrowd", 0) and len(a.get("bbox", ())) == 4]
    xywh = np.asarray(boxes, np.float32).reshape(-1, 4)
    xywh = xywh[(xywh[:, 2] >= min_box_size) & (xywh[:, 3] >= min_box_size)]
    xywh = xywh[np.argsort(-(xywh[:, 2] * xywh[:, 3]), kind="stable")][:max_people]
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def folder_items(folder: str, name: str, split: str | None = None) -> Iterator[dict]:
    """One item per file under `folder` (recursive, sorted); boxes None = whole image. Every file is
    an input: one that does not decode as an image becomes a failure row at decode."""
    for path in files.list_files(folder):
        yield {"record_id": f"{name}/{files.relative(path, folder)}", "file": path, "boxes": None, "split": split}


def coco_items(
    annotations_json: bytes,
    images_dir: str,
    name: str,
    split: str | None = None,
    min_box_size: float = 16.0,
    max_people: int = 20,
) -> Iterator[dict]:
    """One item per image of a COCO JSON with its person boxes (category named "person").

    An image with no usable person box still gets an item (boxes empty): the stage reports it
    as a "no_person" skip, so every image of the file is accounted for.
    """
    data = json.loads(annotations_json)
    person_ids = {int(c["id"]) for c in data.get("categories", []) if c.get("name") == "person"}
    by_image: dict[int, list[dict]] = {}
    for ann in data.get("annotations", []):
        if int(ann.get("category_id", -1)) in person_ids:
            by_image.setdefault(int(ann.get("image_id", -1)), []).append(ann)
    for im in sorted(data.get("images", []), key=lambda im: int(im["id"])):
        boxes = coco_person_boxes(by_image.get(int(im["id"]), []), min_box_size, max_people)
        yield {
            "record_id": f"{name}/{im['id']}",
            "file": files.join(images_dir, im["file_name"]),
            "boxes": boxes.tolist(),
            "split": split,
        }


def select_people(
    keypoints: np.ndarray,
    height: int,
    width: int,
    keypoint_threshold: float = 0.3,
    person_threshold: float = 0.3,
    min_keypoints: int = 4,
) -> np.ndarray:
    """(N, 17, 3) predictions -> (P, 17, 3) confident people, joints outside the image scored 0."""
    kp = np.array(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    x, y = kp[..., 0], kp[..., 1]
    outside = ~np.isfinite(kp).all(axis=2) | (x < 0) | (y < 0) | (x >= width) | (y >= height)
    kp[..., 2][outside] = 0.0
    kp = np.nan_to_num(kp, nan=0.0, posinf=0.0, neginf=0.0)
    scores = kp[..., 2]
    drawn = (scores > keypoint_threshold).sum(axis=1)
    keep = (scores.mean(axis=1) >= person_threshold) & (drawn >= max(1, min_keypoints))  # never an empty skeleton
    return kp[keep]
