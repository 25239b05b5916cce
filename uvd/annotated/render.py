"""Annotation record -> 256x256 RGB images: one geometry for the image and all its annotations.

`compute_geometry` is decided once from the record's full-resolution size; every annotation goes
through the same `apply_geometry` (label maps with nearest neighbour; depth and normals with a
validity-weighted area/bilinear resize so invalid pixels never blend into valid ones) or, for
boxes and keypoints, the same `Geometry.map_points`, and is then drawn at the output size (lines
and joints are as thick at 256 px whatever the source resolution).

A target that carries no information is never a training target: `render_annotation` raises
RecordError("empty_<renderer>", status="skipped") for a segmentation with no labelled pixel
(box-only COCO objects, polygons under 3 points, masks with no foreground), instances with no
instance, depth or normals with no valid (or only one) value, edges with no edge pixel, boxes none
of which shows inside the crop, and a pose with no joint drawn. `render_record` keeps the other
tasks of the image and lists the empty ones in `Rendered.skipped`; `skipped_rows` turns them
(and the record's own `defects`) into failure rows, one per defect.

Detection boxes are drawn over the image (the paper's colour-coded boxes on the photo); the boxes
annotation's `canvas: "black"` draws them on black instead.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import cv2
import numpy as np

from uvd.annotated.records import AnnotationRecord, RecordError, is_input_type
from uvd.schema import failure_row, image_id_for
from uvd.transforms import depth, detection, edges, normals, pose, segmentation, synthetic
from uvd.transforms.image import Geometry, apply_geometry, compute_geometry, encode_png

BOX_CANVASES = ("image", "black")


class Rendered(NamedTuple):
    image: np.ndarray  # uint8 (size, size, 3)
    annotations: dict[str, np.ndarray]  # task -> uint8 (size, size, 3), only targets with content
    skipped: dict[str, RecordError] = {}  # task -> why it is no target (status "skipped")


def _empty(renderer: str, task: str, why: str) -> RecordError:
    return RecordError(f"empty_{renderer}", f"{task}: {why}", status="skipped")


def record_geometry(record: AnnotationRecord, size: int = 256, mode: str = "crop") -> Geometry:
    """The geometry of the record's full-resolution image (`height`/`width` when it was decoded smaller)."""
    h, w = record.get("height") or record["image"].shape[0], record.get("width") or record["image"].shape[1]
    return compute_geometry(int(h), int(w), size, mode)


def _smooth_interpolation(values: np.ndarray, geom: Geometry) -> str:
    """Area when the crop box (on this array's grid) shrinks to the output, else bilinear."""
    box_rows = geom.box_h * values.shape[0] / geom.src_h
    return "area" if box_rows >= geom.out_h else "bilinear"


def _resize_masked(values: np.ndarray, valid: np.ndarray, geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Resize values with invalid pixels given zero weight; a pixel stays valid when >= half its
    footprint was. Area when shrinking, bilinear when enlarging (bicubic would overshoot)."""
    interp = _smooth_interpolation(values, geom)
    mask = valid[..., None] if values.ndim == 3 else valid
    num = apply_geometry(np.where(mask, values, 0).astype(np.float32), geom, interpolation=interp)
    den = apply_geometry(valid.astype(np.float32), geom, interpolation=interp)
    ok = den >= 0.5
    safe = np.where(ok, den, 1.0)
    return num / (safe[..., None] if num.ndim == 3 else safe), ok


def rasterise_masks(objects: list, values: np.ndarray, geom: Geometry, fill: int) -> np.ndarray:
    """COCO polygons / RLE masks -> an (out_h, out_w) int32 map painted with `values`, in order.

    Polygons map through the geometry and fill at the output size with 1/16 px precision
    (cv2 shift=4); coordinates are pixel-corner based, so 0.5 is taken off for cv2's centres.
    RLE masks decode at full size and resize with nearest neighbour. value < 0 paints nothing.
    """
    canvas = np.full((geom.out_h, geom.out_w), fill, np.int32)
    for obj, value in zip(objects, values):
        if value < 0 or not obj:
            continue
        if isinstance(obj, list):
            polys = [
                np.round((geom.map_points(np.asarray(p, np.float64).reshape(-1, 2)) - 0.5) * 16).astype(np.int32)
                for p in obj
                if len(p) >= 6
            ]
            if polys:
                cv2.fillPoly(canvas, polys, int(value), lineType=cv2.LINE_8, shift=4)
        else:
            from pycocotools import mask as mask_utils

            rle = obj if isinstance(obj.get("counts"), (bytes, str)) else mask_utils.frPyObjects(obj, *obj["size"])
            if isinstance(rle.get("counts"), str):
                rle = {"size": rle["size"], "counts": rle["counts"].encode()}
            mask = apply_geometry(mask_utils.decode(rle), geom, nearest=True)
            canvas[mask.astype(bool)] = int(value)
    return canvas


def render_annotation(
    task: str, ann: dict, image256: np.ndarray, geom: Geometry, seed: int, record_id: str
) -> np.ndarray:
    """One annotation -> uint8 (size, size, 3), in the geometry of its record's image."""
    type_, data = ann["type"], ann.get("data")
    size_h, size_w = geom.out_h, geom.out_w
    if type_ == "depth":
        d = np.asarray(data, dtype=np.float32)
        valid = np.isfinite(d) & (d > 0)
        resized, ok = _resize_masked(d, valid, geom)
        if not ok.any():
            raise _empty("depth", task, "no valid depth in the crop")
        if np.ptp(resized[ok]) <= 0:
            raise _empty("depth", task, f"one depth value ({float(resized[ok][0]):.4g}) everywhere")
        return depth.render_depth(resized, invalid=~ok, inverse=ann.get("inverse", True))
    if type_ == "normals":
        n = np.asarray(data, dtype=np.float32)
        valid = np.isfinite(n).all(axis=2) & (np.abs(n).sum(axis=2) > 1e-6)
        resized, ok = _resize_masked(n, valid, geom)
        if not ok.any():
            raise _empty("normals", task, "no valid normal in the crop")
        resized[~ok] = 0
        return normals.render_normals(resized)
    if type_ == "segmentation":
        labels = apply_geometry(np.asarray(data).astype(np.int32), geom, nearest=True)
        ignore = ann.get("ignore_index", segmentation.IGNORE_INDEX)
        if ignore is not None and (labels == ignore).all():
            raise _empty("segmentation", task, "no labelled pixel in the crop")
        return segmentation.render_segmentation(labels, ignore_index=ignore)
    if type_ == "instances":
        ids = apply_geometry(np.asarray(data).astype(np.int32), geom, nearest=True)
        if not (ids > 0).any():
            raise _empty("instances", task, "no instance in the crop")
        return segmentation.render_instance_ids(ids)
    if type_ == "masks":
        classes = np.asarray(data["classes"], np.int64).reshape(-1)
        if ann.get("style", "semantic") == "instances":
            values = np.where(classes >= 0, np.arange(1, len(classes) + 1), -1)
            ids = rasterise_masks(data["objects"], values, geom, 0)
            if not (ids > 0).any():
                raise _empty("instances", task, f"none of {len(classes)} objects has a mask pixel in the crop")
            return segmentation.render_instance_ids(ids)
        labels = rasterise_masks(data["objects"], classes, geom, segmentation.IGNORE_INDEX)
        if (labels == segmentation.IGNORE_INDEX).all():
            raise _empty("segmentation", task, f"none of {len(classes)} objects has a mask pixel in the crop")
        return segmentation.render_segmentation(labels)
    if type_ == "edges":
        rendered = _render_edges(ann, data, image256, geom)
        if not rendered.any():
            raise _empty("edges", task, "no edge pixel")
        return rendered
    if type_ == "boxes":
        boxes = geom.map_boxes(np.asarray(data["boxes"], dtype=np.float64).reshape(-1, 4), clip=False)
        if not detection.visible_boxes(boxes, size_h, size_w).any():
            raise _empty("boxes", task, f"none of {len(boxes)} boxes shows in the crop")
        canvas = ann.get("canvas", "image")
        if canvas not in BOX_CANVASES:
            raise RecordError("bad_boxes", f"{task}: canvas must be one of {BOX_CANVASES}, got {canvas!r}")
        return detection.render_boxes(
            boxes,
            np.asarray(data["classes"]).reshape(-1),
            size_h,
            size_w,
            background=image256 if canvas == "image" else None,
        )
    if type_ == "keypoints":
        kp = np.asarray(data, dtype=np.float64).reshape(-1, 17, 3).copy()
        kp[..., :2] = geom.map_points(kp[..., :2])
        rendered = pose.render_pose(kp, size_h, size_w, score_threshold=ann.get("score_threshold", 0.3))
        if not rendered.any():
            raise _empty("pose", task, f"no joint of {len(kp)} people shows in the crop")
        return rendered
    if type_ == "image":
        return apply_geometry(np.asarray(data, dtype=np.uint8), geom)
    if type_ == "synthetic":
        rng = synthetic.record_rng(seed, record_id, task)
        fn = data["fn"]
        if fn == "gray":
            return synthetic.to_gray(image256)
        if fn == "black_boxes":
            return synthetic.black_boxes(image256, rng, mode=data.get("mode", "square"))
        if fn == "noise":
            return synthetic.add_noise(image256, rng)
        if fn == "low_light":
            return synthetic.low_light(image256, rng)
    raise RecordError("unknown_annotation_type", f"{task}: {type_!r}")


def _render_edges(ann: dict, data, image256: np.ndarray, geom: Geometry) -> np.ndarray:
    """Canny of the resized image (data None) or a given edge map, at the output size."""
    if data is None:
        return edges.render_edges(image256)
    e = np.asarray(data)
    e = e[..., :3].max(axis=2) if e.ndim == 3 else e
    scaled = e.astype(np.float32) / (65535.0 if e.dtype == np.uint16 else 255.0 if e.dtype.kind in "ui" else 1.0)
    if ann.get("invert", False):
        scaled = 1.0 - scaled
    resized = np.clip(apply_geometry(scaled, geom, interpolation=_smooth_interpolation(scaled, geom)), 0.0, 1.0)
    threshold = ann.get("threshold")
    if threshold is None and not np.any((scaled > 0) & (scaled < 1)):
        threshold = 0.1  # a binary map stays binary: any edge in a pixel's footprint -> white
    return edges.render_edge_map(resized, threshold=threshold)


def render_record(record: AnnotationRecord, size: int = 256, mode: str = "crop", seed: int = 0) -> Rendered:
    """The record's image and every annotation at size x size, sharing one geometry; a task whose
    target is empty goes to `skipped` and the others are kept (any other RecordError is raised)."""
    geom = record_geometry(record, size, mode)
    image256 = apply_geometry(record["image"], geom)
    out, skipped = {}, {}
    for task, ann in record["annotations"].items():
        try:
            out[task] = render_annotation(task, ann, image256, geom, seed, record["record_id"])
        except RecordError as exc:
            if exc.status != "skipped":
                raise
            skipped[task] = exc
    return Rendered(image256, out, skipped)


def skipped_rows(record: AnnotationRecord, rendered: Rendered, source: str, stage: str) -> list[dict]:
    """One failure row per defect of the record: its own `defects` (objects or tasks its adapter
    left out: (reason, detail[, status]), "skipped" by default) and each task whose target came out
    empty (skipped)."""
    rows = [
        failure_row(record["record_id"], source, stage, *defect)
        if len(defect) == 3
        else failure_row(record["record_id"], source, stage, *defect, status="skipped")
        for defect in record.get("defects", [])
    ]
    rows += [
        failure_row(record["record_id"], source, stage, exc.reason, exc.detail, status="skipped")
        for _, exc in sorted(rendered.skipped.items())
    ]
    return rows


def image_row(pixels: np.ndarray, source: str, provenance: dict, image_id: str | None = None) -> dict:
    """An images-table row (uvd.schema.IMAGES_SCHEMA) for 256x256 RGB pixels."""
    return {
        "image_id": image_id or image_id_for(pixels),
        "image": encode_png(pixels),
        "source": source,
        "provenance": json.dumps(provenance, sort_keys=True, default=str),
    }


def record_image_rows(
    record: AnnotationRecord, rendered: Rendered, bucket: int
) -> tuple[list[dict], str, dict[str, str]]:
    """Image rows for a rendered record, the image's id and each task's annotation id.

    Annotation rows carry their pair in provenance ("pair": [input_id, output_id]) so the pair
    sentence builder can pool them by (dataset, task, split, bucket) downstream.
    """
    source = f"ann/{record['dataset']}"
    base = {
        "dataset": record["dataset"],
        "record_id": record["record_id"],
        "group": record["group"],
        "split": record.get("split"),
        **record.get("provenance", {}),
    }
    main = image_row(rendered.image, source, {**base, "role": "image"})
    rows, ann_ids = [main], {}
    for task, pixels in rendered.annotations.items():
        row_id = image_id_for(pixels)
        ann = record["annotations"][task]
        pair = [row_id, main["image_id"]] if is_input_type(ann) else [main["image_id"], row_id]
        prov = {**base, "role": "annotation", "task": task, "type": ann["type"], "pair": pair, "bucket": bucket}
        rows.append(image_row(pixels, source, prov, image_id=row_id))
        ann_ids[task] = row_id
    return rows, main["image_id"], ann_ids
