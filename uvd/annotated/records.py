"""The annotation record: what dataset adapters, pose pseudo-labels and expert pseudo-labels emit.

One record = one original-size image plus its annotations, before any resize. Rendering
(uvd.annotated.render) gives every annotation exactly the image's resize/crop and
draws it as a 256x256 RGB image, so all producers share renderers and sentence builders.

    {"record_id": "coco/000000397133",        # unique within the dataset
     "dataset": "coco",                         # names the pair sentences' pool: ann/<task>
     "group": "000000397133",                   # what splits must not cut (defaults to record_id)
     "split": "train" | None,                   # dataset-native split, else None
     "image": uint8 (H, W, 3),                  # RGB, original size (or a reduced JPEG decode:
     "height": H, "width": W,                   #   then these give the full size coordinates use)
     "annotations": {task: {"type": <type>, "data": ...}},
     "provenance": {...},                       # JSON-able: paths, ids (optional)
     "defects": [(reason, detail[, status])]}   # what the adapter left out (failure rows; default skipped)

Annotation types and their data (coordinates in the original image's pixels):
    depth         float (H, W) metric depth; <= 0 / NaN = invalid. "inverse": False for disparity.
    normals       float (H, W, 3) normal vectors (any length; zero = no normal)
    segmentation  int (H, W) class ids 0..149 (ADE20K order), IGNORE_INDEX = 255 ignored
    instances     int (H, W) instance ids, 0 = none, i >= 1 = instance i
    masks         {"objects": [COCO polygons (list of flat x, y lists) or an RLE dict], "classes":
                  int (N,)}, "style": "semantic" (class colours) | "instances" (one colour per
                  object; class < 0 = not an instance, e.g. crowd). Painted in order (put large
                  objects first). Polygons are rasterised at the output size after the geometry
                  (exact, and no full-resolution mask is ever made); RLE masks decode, then resize
                  with nearest neighbour
    edges         None -> Canny (100, 200) of the resized image; or an (H, W) edge map
                  white-on-black ("invert": True for black-on-white maps)
    boxes         {"boxes": float (N, 4) x0, y0, x1, y1, "classes": int (N,)}
    keypoints     float (P, 17, 3) COCO-17 x, y, score (or visibility 0/1/2)
    image         uint8 (H', W', 3) an output image (paired folders, stereo right view...);
                  resized with its own shape's geometry when it differs from the image's
    synthetic     {"fn": "gray" | "black_boxes" | "noise" | "low_light", ...params}: made from
                  the resized image, seeded per record; it is the pair's INPUT and the image its
                  output (colorization: gray -> colour)
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from uvd.schema import RecordError, failure_row

ANNOTATION_TYPES = (
    "depth",
    "normals",
    "segmentation",
    "instances",
    "masks",
    "edges",
    "boxes",
    "keypoints",
    "image",
    "synthetic",
)
SYNTHETIC_FNS = ("gray", "black_boxes", "noise", "low_light")
# Types whose rendered image is the pair's input (the record's image is then the output).
INPUT_TYPES = ("synthetic",)
BOX_TOLERANCE_PX = 1.0  # COCO-style boxes are floats; allow rounding at the image border


class Annotation(TypedDict, total=False):
    type: str
    data: Any


class AnnotationRecord(TypedDict, total=False):
    record_id: str
    dataset: str
    group: str
    split: str | None
    image: np.ndarray
    height: int
    width: int
    annotations: dict[str, Annotation]
    provenance: dict
    defects: list[tuple[str, ...]]


class RecordDefects(RecordError):
    """Every defect of one record, each its own failure row (`errors`); reads as the first one."""

    def __init__(self, errors: list[RecordError]) -> None:
        first = errors[0]
        super().__init__(first.reason, first.detail, first.status)
        self.errors = list(errors)


def defect_rows(exc: RecordError, record_id: str, source: str, stage: str) -> list[dict]:
    """Failure rows of a RecordError: one per defect (RecordDefects), else one."""
    return [
        failure_row(record_id, source, stage, e.reason, e.detail, status=e.status)
        for e in getattr(exc, "errors", [exc])
    ]


def annotation(type_: str, data: Any = None, **extra: Any) -> Annotation:
    """One annotation; `extra` keys (inverse, invert...) travel beside type and data."""
    if type_ not in ANNOTATION_TYPES:
        raise RecordError("unknown_annotation_type", f"{type_!r}; use one of {ANNOTATION_TYPES}")
    if type_ == "synthetic" and (not isinstance(data, dict) or data.get("fn") not in SYNTHETIC_FNS):
        raise RecordError("bad_synthetic", f"data must be {{'fn': one of {SYNTHETIC_FNS}}}, got {data!r}")
    return {"type": type_, "data": data, **extra}  # type: ignore[typeddict-item]


def make_record(
    record_id: str,
    dataset: str,
    image: np.ndarray,
    annotations: dict[str, Annotation],
    group: str | None = None,
    split: str | None = None,
    provenance: dict | None = None,
    full_size: tuple[int, int] | None = None,
    defects: list[tuple[str, ...]] | None = None,
) -> AnnotationRecord:
    """Build and check a record: RGB uint8 image, known annotation types, shapes that match.

    `full_size` (H, W) is the image's full resolution when `image` is a reduced decode; dense
    annotations and coordinates are at full resolution.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RecordError("bad_image", f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = full_size if full_size is not None else image.shape[:2]
    for task, ann in annotations.items():
        check_annotation(task, ann, h, w)
    return {
        "record_id": str(record_id),
        "dataset": dataset,
        "group": str(group if group is not None else record_id),
        "split": split,
        "image": image,
        "height": int(h),
        "width": int(w),
        "annotations": dict(annotations),
        "provenance": dict(provenance or {}),
        "defects": list(defects or []),
    }


def check_annotation(task: str, ann: Annotation, height: int, width: int) -> None:
    """Raise RecordError when an annotation's data cannot belong to an (height, width) image."""
    type_, data = ann.get("type"), ann.get("data")
    if type_ not in ANNOTATION_TYPES:
        raise RecordError("unknown_annotation_type", f"{task}: {type_!r}")
    if type_ in ("depth", "segmentation", "instances") or (type_ == "edges" and data is not None):
        arr = np.asarray(data)
        if arr.shape[:2] != (height, width):
            raise RecordError(
                "annotation_size_mismatch", f"{task}: {type_} map {arr.shape[:2]} vs image {(height, width)}"
            )
    elif type_ == "normals":
        arr = np.asarray(data)
        if arr.shape != (height, width, 3):
            raise RecordError("annotation_size_mismatch", f"{task}: normals {arr.shape} vs image {(height, width)}")
    elif type_ == "boxes":
        boxes = np.asarray(data["boxes"], dtype=np.float64).reshape(-1, 4)
        if len(boxes) != len(np.asarray(data["classes"]).reshape(-1)):
            raise RecordError("bad_boxes", f"{task}: {len(boxes)} boxes vs {len(data['classes'])} classes")
    elif type_ == "masks":
        if len(data["objects"]) != len(np.asarray(data["classes"]).reshape(-1)):
            raise RecordError("bad_masks", f"{task}: {len(data['objects'])} objects vs {len(data['classes'])} classes")
        if ann.get("style", "semantic") not in ("semantic", "instances"):
            raise RecordError("bad_masks", f"{task}: style must be semantic or instances")
    elif type_ == "keypoints":
        if np.asarray(data).reshape(-1, 17, 3).size != np.asarray(data).size:
            raise RecordError("bad_keypoints", f"{task}: keypoints must be (P, 17, 3)")
    elif type_ == "image":
        arr = np.asarray(data)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise RecordError("bad_image", f"{task}: output image must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")


def is_input_type(ann: Annotation) -> bool:
    """True when the rendered annotation is the pair's input and the record's image its output."""
    return ann.get("type") in INPUT_TYPES
