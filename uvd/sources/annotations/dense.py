"""Dense-map adapter: an image folder plus one folder per annotation task, matched by file stem.

    images/0001.jpg   seg/0001.png   depth/0001.png   normals/0001.png   edges/0001.png

Each task folder has a type and its file convention (PNG or .npy):
    segmentation  ADE20K-style PNG: 0 = ignore, 1..150 = classes (reduce_zero_label, default);
                  or class ids with 255 = ignore (reduce_zero_label: false); .npy ints likewise
    depth         NYUv2-style uint16 PNG in millimetres (`scale`: units per metre, default 1000),
                  0 = invalid; or .npy float metres. `inverse: false` for disparity maps
    normals       RGB PNG, (n + 1) / 2 encoded, black = no normal; or .npy float (H, W, 3)
    edges         gray PNG, white edges (`invert: true` for black-on-white)
    instances     PNG of instance ids (palette index), 0 = none
An image with k annotation files is one record with k tasks (the multi-annotation source). An
annotation file with no image is a failure row ("unmatched_annotation"); an image with none is
"skipped" ("no_annotations").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from uvd.annotated.records import (
    AnnotationRecord,
    RecordDefects,
    RecordError,
    annotation,
    check_annotation,
    make_record,
)
from uvd.config import ConfigError, require
from uvd.core import files
from uvd.sources.annotations.listing import by_stem
from uvd.transforms.depth import depth_png_to_meters
from uvd.transforms.normals import normals_png_to_vectors
from uvd.transforms.segmentation import ade20k_png_to_labels

DENSE_TYPES = ("segmentation", "depth", "normals", "edges", "instances")
ANNOTATION_EXTS = (".png", ".npy", ".tif", ".tiff")
TASK_KEYS = {"dir", "type", "reduce_zero_label", "scale", "inverse", "invert"}


@dataclass
class DenseOptions:
    """adapters[i] with type: dense. annotations: {task: {dir, type, ...}}."""

    images: str
    annotations: dict = field(default_factory=dict)
    name: str = "dense"
    split: str | None = None
    type: str = "dense"

    def validate(self) -> None:
        require(bool(self.annotations), "annotations", "give at least one task: {task: {dir: ..., type: ...}}")
        for task, spec in self.annotations.items():
            require(isinstance(spec, dict) and "dir" in spec, f"annotations.{task}", "needs {dir: ..., type: ...}")
            require(
                spec.get("type") in DENSE_TYPES,
                f"annotations.{task}.type",
                f"must be one of {list(DENSE_TYPES)}, got {spec.get('type')!r}",
            )
            unknown = sorted(set(spec) - TASK_KEYS)
            if unknown:
                raise ConfigError(f"annotations.{task}.{unknown[0]}: unknown key; allowed: {sorted(TASK_KEYS)}")


def list_items(opts: DenseOptions, root: str) -> Iterator[dict]:
    images_dir = files.join(root, opts.images)
    images, bad = by_stem(images_dir, files.IMAGE_EXTS, "dense", opts.name)
    yield from bad
    per_task: dict[str, dict[str, str]] = {}
    for task, spec in sorted(opts.annotations.items()):
        folder = files.join(root, spec["dir"])
        per_task[task], bad = by_stem(folder, ANNOTATION_EXTS, "dense", opts.name, task)
        yield from bad
        for s in sorted(set(per_task[task]) - set(images)):
            yield {
                "adapter": "dense",
                "dataset": opts.name,
                "record_id": f"{opts.name}/{task}/{s}",
                "failure": "unmatched_annotation",
                "detail": per_task[task][s],
            }
    for s, path in sorted(images.items()):
        found = {task: paths[s] for task, paths in per_task.items() if s in paths}
        yield {
            "adapter": "dense",
            "dataset": opts.name,
            "record_id": f"{opts.name}/{s}",
            "file": path,
            "annotations": found,
            "specs": {t: opts.annotations[t] for t in found},
            "split": opts.split,
        }


def decode_annotation(path: str, spec: dict) -> dict:
    """One annotation file -> a record annotation of its task's type."""
    arr = files.read_array(path)
    type_ = spec["type"]
    is_png = not path.lower().endswith(".npy")
    if type_ == "segmentation":
        if arr.ndim == 3:
            arr = arr[..., 0]
        labels = ade20k_png_to_labels(arr) if spec.get("reduce_zero_label", True) else arr.astype(np.int32)
        return annotation("segmentation", labels)
    if type_ == "depth":
        d = depth_png_to_meters(arr, float(spec.get("scale", 1000.0))) if is_png else np.asarray(arr, np.float32)
        return annotation("depth", np.squeeze(d), inverse=bool(spec.get("inverse", True)))
    if type_ == "normals":
        return annotation("normals", normals_png_to_vectors(arr) if is_png else np.asarray(arr, np.float32))
    if type_ == "edges":
        return annotation("edges", arr, invert=bool(spec.get("invert", False)))
    if type_ == "instances":
        return annotation("instances", (arr[..., 0] if arr.ndim == 3 else arr).astype(np.int32))
    raise RecordError("unknown_annotation_type", type_)


def load_record(item: dict, size: int = 256) -> AnnotationRecord:
    if not item["annotations"]:
        raise RecordError("no_annotations", item["file"], status="skipped")
    decoded = files.read_image(item["file"], min_size=size)
    anns, errors = {}, []
    for task, path in sorted(item["annotations"].items()):  # a bad file costs its own task only
        try:
            ann = decode_annotation(path, item["specs"][task])
            check_annotation(task, ann, decoded.height, decoded.width)
            anns[task] = ann
        except RecordError as exc:
            errors.append(
                RecordError(
                    exc.reason, exc.detail if exc.detail.startswith(task) else f"{task}: {exc.detail}", exc.status
                )
            )
    if not anns:
        raise RecordDefects(errors)
    return make_record(
        item["record_id"],
        item["dataset"],
        decoded.pixels,
        anns,
        split=item.get("split"),
        provenance={"path": item["file"], "annotations": item["annotations"]},
        full_size=(decoded.height, decoded.width),
        defects=[(e.reason, e.detail, e.status) for e in errors],
    )
