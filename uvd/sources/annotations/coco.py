"""COCO JSON adapter: instances (boxes, polygon/RLE masks) and person_keypoints -> annotation records.

`list_items` reads the JSON once and emits one light item per image (its file, size and own
annotations), so Beam can spread images across workers. `load_record` checks every annotation
before any pixel work: a box outside the image, a negative or empty box, an unknown category, a
keypoint outside the image, a missing or unreadable file, or a file whose size disagrees with the
JSON makes the whole image a failure row (reason key), never a crash and never a silent drop;
every such defect of the image is reported (RecordDefects: one row each), not only the first.

What one task cannot use never costs the image its other tasks: an object without a usable mask
(`"segmentation": []` box-only, polygons under 3 points) is left out of segmentation/instances
with a skipped row (`no_mask`), an image without keypoints loses only its pose task
(`no_keypoints`), and a task whose target comes out empty is skipped at render
(uvd.annotated.render).

Tasks (record annotation names): "detection" (class-coloured boxes), "segmentation" (semantic
map from the polygon/RLE masks, class colours), "instances" (one colour per non-crowd object), "pose" (OpenPose
skeletons from COCO-17 keypoints). Class index = rank of the category id among the file's
categories (COCO's 80 ids 1..90 -> 0..79), which picks the palette colour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from uvd.annotated.records import (
    BOX_TOLERANCE_PX,
    AnnotationRecord,
    RecordDefects,
    RecordError,
    annotation,
    make_record,
)
from uvd.annotated.render import BOX_CANVASES
from uvd.config import require
from uvd.core import files

TASKS = ("detection", "segmentation", "instances", "pose")


@dataclass
class CocoOptions:
    """adapters[i] with type: coco."""

    annotations: str  # the JSON file (relative to the stage input folder)
    images: str  # folder the JSON's file_name values are relative to
    name: str = "coco"
    tasks: list | None = None  # default: ["pose"] for keypoint files, else detection + segmentation
    split: str | None = None  # dataset-native split of this file (train/val), if any
    box_canvas: str = "image"  # detection boxes over the image (the paper's), or "black"
    type: str = "coco"

    def validate(self) -> None:
        bad = sorted(set(self.tasks or []) - set(TASKS))
        require(not bad, "tasks", f"unknown task {bad[:1]}; use some of {list(TASKS)}")
        require(self.box_canvas in BOX_CANVASES, "box_canvas", f"one of {BOX_CANVASES}, got {self.box_canvas!r}")


def list_items(opts: CocoOptions, root: str) -> Iterator[dict]:
    """One item per image of the JSON (annotations attached); annotations of unknown images -> failure items."""
    data = json.loads(files.read_bytes(files.join(root, opts.annotations)))
    categories = sorted(int(c["id"]) for c in data.get("categories", []))
    cat_index = {str(c): i for i, c in enumerate(categories)}
    has_keypoints = any("keypoints" in c for c in data.get("categories", []))
    tasks = list(opts.tasks or (["pose"] if has_keypoints else ["detection", "segmentation"]))
    by_image: dict[int, list[dict]] = {}
    images = {int(im["id"]): im for im in data.get("images", [])}
    for ann in data.get("annotations", []):
        image_id = int(ann.get("image_id", -1))
        if image_id not in images:
            yield {
                "adapter": "coco",
                "dataset": opts.name,
                "record_id": f"{opts.name}/ann{ann.get('id')}",
                "failure": "unknown_image",
                "detail": f"annotation {ann.get('id')} -> image_id {image_id}",
            }
            continue
        by_image.setdefault(image_id, []).append(ann)
    images_dir = files.join(root, opts.images)
    for image_id, im in sorted(images.items()):
        yield {
            "adapter": "coco",
            "dataset": opts.name,
            "record_id": f"{opts.name}/{image_id}",
            "file": files.join(images_dir, im["file_name"]),
            "height": int(im.get("height", 0)),
            "width": int(im.get("width", 0)),
            "anns": by_image.get(image_id, []),
            "categories": cat_index,
            "tasks": tasks,
            "split": opts.split,
            "box_canvas": opts.box_canvas,
        }


def annotation_defects(item: dict) -> list[RecordError]:
    """Every defect that makes the image unusable (each annotation checked, all reported)."""
    h, w = item["height"], item["width"]
    out = []
    for ann in item["anns"]:
        aid = ann.get("id")
        if str(ann.get("category_id")) not in item["categories"]:
            out.append(RecordError("unknown_category", f"annotation {aid}: category_id {ann.get('category_id')}"))
        x, y, bw, bh = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
        t = BOX_TOLERANCE_PX
        if bw < 0 or bh < 0:
            out.append(RecordError("negative_box_size", f"annotation {aid}: bbox {ann.get('bbox')}"))
        elif bw == 0 or bh == 0:
            out.append(RecordError("empty_box", f"annotation {aid}: bbox {ann.get('bbox')}"))
        elif x < -t or y < -t or x + bw > w + t or y + bh > h + t:
            out.append(RecordError("box_outside_image", f"annotation {aid}: bbox {ann.get('bbox')} vs image {w}x{h}"))
        if "keypoints" in ann:
            kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            if len(kp) != 17:
                out.append(RecordError("bad_keypoints", f"annotation {aid}: {len(kp)} keypoints, expected 17"))
                continue
            labelled = kp[kp[:, 2] > 0]
            if (
                (labelled[:, 0] < -t) | (labelled[:, 1] < -t) | (labelled[:, 0] > w + t) | (labelled[:, 1] > h + t)
            ).any():
                out.append(RecordError("keypoint_outside_image", f"annotation {aid}"))
    return out


def usable_mask(segmentation) -> bool:
    """A COCO segmentation that can paint pixels: an RLE dict, or a polygon with >= 3 points."""
    if isinstance(segmentation, dict):
        return bool(segmentation.get("counts")) and bool(segmentation.get("size"))
    return isinstance(segmentation, list) and any(len(p) >= 6 for p in segmentation)


def load_record(item: dict, size: int = 256) -> AnnotationRecord:
    """An item from list_items -> a checked annotation record (RecordError on bad input)."""
    if not item["anns"]:
        raise RecordError("no_annotations", item["file"], status="skipped")
    defects = annotation_defects(item)
    if defects:
        raise RecordDefects(defects)
    decoded = files.read_image(item["file"], min_size=size)
    h, w = item["height"], item["width"]
    if (decoded.height, decoded.width) != (h, w):
        raise RecordError("image_size_mismatch", f"{item['file']}: file {decoded.width}x{decoded.height}, JSON {w}x{h}")
    anns = sorted(item["anns"], key=lambda a: -float(a.get("area", 0.0)))  # large first: small on top
    classes = np.array([item["categories"][str(a["category_id"])] for a in anns], np.int64)
    annotations, skipped = {}, []
    tasks = item["tasks"]
    if "detection" in tasks:
        xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        annotations["detection"] = annotation(
            "boxes", {"boxes": boxes, "classes": classes}, canvas=item.get("box_canvas", "image")
        )
    if "segmentation" in tasks or "instances" in tasks:
        masked = [usable_mask(a.get("segmentation")) for a in anns]
        skipped += [
            (
                "no_mask",
                f"annotation {a.get('id')}: segmentation {str(a.get('segmentation'))[:60]} "
                "paints nothing; left out of segmentation/instances",
            )
            for a, ok in zip(anns, masked)
            if not ok
        ]
        objects = [a["segmentation"] if ok else [] for a, ok in zip(anns, masked)]  # rasterised at 256
        if "segmentation" in tasks:
            annotations["segmentation"] = annotation(
                "masks", {"objects": objects, "classes": classes}, style="semantic"
            )
        if "instances" in tasks:
            not_crowd = np.where([a.get("iscrowd", 0) for a in anns], -1, classes)
            annotations["instances"] = annotation(
                "masks", {"objects": objects, "classes": not_crowd}, style="instances"
            )
    if "pose" in tasks:
        people = [a for a in anns if a.get("num_keypoints", 0) > 0 and "keypoints" in a]
        if people:
            kp = np.array([a["keypoints"] for a in people], np.float64).reshape(-1, 17, 3)
            annotations["pose"] = annotation("keypoints", kp)
        else:
            skipped.append(("no_keypoints", f"pose: no annotation of {item['file']} has keypoints"))
    if not annotations:
        raise RecordDefects([RecordError(reason, detail, status="skipped") for reason, detail in skipped])
    return make_record(
        item["record_id"],
        item["dataset"],
        decoded.pixels,
        annotations,
        group=item["record_id"],
        split=item.get("split"),
        provenance={"path": item["file"]},
        full_size=(h, w),
        defects=skipped,
    )
