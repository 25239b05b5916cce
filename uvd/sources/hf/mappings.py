"""Built-in column mappings: which dataset column plays which role, and the values they hold.

    mapping         roles (default column)                                  becomes
    classification  image (image), label (label)                            same-class 16-image sentences
    segmentation    image (image), label (annotation)                       (image, seg map) pair records
    depth           image (image), depth (depth_map)                        (image, depth) pair records
    detection       image (image), boxes (objects.bbox),                    (image, boxes) pair records
                    classes (objects.category)
    video           video (video): a path, or a Video cell with a path      the video stage's clips
    every mapping   id, group, split (no default: optional columns)

The defaults fit the common hub layouts (imagenet-1k / cifar "img"+"label" with an override,
scene_parse_150, nyu_depth_v2, cppe-5 / detection-datasets). `columns` in the config overrides any
role; "a.b" is field b of struct column a (also through a list of structs).

`resolve_columns` checks the mapping against the dataset's features before any work: a missing
column or one of the wrong kind is a ConfigError naming the role, the column and the columns the
dataset has. Per row, a value that cannot be used raises RowError naming the column.

Values (pure functions, numpy out):
- images: an Image column ({"bytes", "path"}), binary, or a path string; decoded by
  uvd.transforms.image (EXIF, RGB, bomb guard)
- label maps: an Image column (PNG values kept: palette indices, 16-bit) or an array column;
  2-D, or 3-D with equal channels. ADE20K convention by default (0 = ignore, 1..150 = classes:
  reduce_zero_label); otherwise ids as stored with 255 = ignore
- depth: an integer map is in 1/depth_scale metres (NYU PNG: millimetres, 1000); a float map
  is metres (or disparity with depth_inverse false); <= 0 / NaN invalid
- boxes: (N, 4) in bbox_format "xywh" (COCO, the hub's usual) or "xyxy", pixels of the full image
- extra annotations (config `annotations: {task: {column, type, ...}}`, with the annotated mappings):
  more dense maps of the same image, each its own task (pairs pool per task) and together an
  m-of-(1+k) multi-annotation sentence. type segmentation (reduce_zero_label), depth (scale,
  inverse), normals ((n + 1) / 2 RGB PNG or float (H, W, 3)), edges (invert), instances (ids)
- videos: a file path (relative paths are relative to a local input folder); decord needs a
  file, so a Video cell holding only bytes is a failure row (embedded_video)
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image as PILImage

from uvd.annotated.records import BOX_TOLERANCE_PX, Annotation, annotation
from uvd.config import ConfigError
from uvd.transforms.image import DEFAULT_MAX_PIXELS, Decoded, ImageError, decode_image
from uvd.transforms.normals import normals_png_to_vectors
from uvd.transforms.segmentation import IGNORE_INDEX, ade20k_png_to_labels

MAPPINGS: dict[str, dict[str, str]] = {
    "classification": {"image": "image", "label": "label"},
    "segmentation": {"image": "image", "label": "annotation"},
    "depth": {"image": "image", "depth": "depth_map"},
    "detection": {"image": "image", "boxes": "objects.bbox", "classes": "objects.category"},
    "video": {"video": "video"},
}
OPTIONAL_ROLES = ("id", "group", "split")
BBOX_FORMATS = ("xywh", "xyxy")
EXTRA_TYPES = ("segmentation", "depth", "normals", "edges", "instances")
EXTRA_KEYS = {"column", "type", "reduce_zero_label", "scale", "inverse", "invert"}

# role -> what its column must hold ("class" for classification's label, "map" otherwise)
_ROLE_KIND = {
    "image": "image",
    "video": "video",
    "depth": "map",
    "boxes": "list",
    "classes": "list",
    "id": "scalar",
    "group": "scalar",
    "split": "scalar",
}
_KIND_WORDS = {
    "image": "an Image (or binary bytes, or a path string)",
    "class": "a ClassLabel, int or string",
    "map": "an Image or an array (Array2D, nested lists)",
    "list": "a list (Sequence)",
    "scalar": "a single value (string, int or ClassLabel)",
    "video": "a Video or a path string",
}


class RowError(ValueError):
    """A row value that cannot be used: `reason` is the failure key, `column` the column at fault."""

    def __init__(self, reason: str, column: str, detail: str = "", status: str = "failed") -> None:
        super().__init__(f"{reason}: column {column!r}: {detail}")
        self.reason, self.column, self.detail, self.status = reason, column, detail, status

    @property
    def message(self) -> str:
        return f"column {self.column!r}: {self.detail}" if self.detail else f"column {self.column!r}"


# --- the mapping against the features (driver side, before any work) -------------------------------
def role_kind(mapping: str, role: str) -> str:
    if role == "label":
        return "class" if mapping == "classification" else "map"
    return _ROLE_KIND[role]


def feature_kind(feature: Any) -> set[str]:
    """The kinds of value a datasets feature can serve as."""
    from datasets import Array2D, Array3D, ClassLabel, Image, LargeList, List, Value, Video

    if isinstance(feature, Video):
        return {"video"}
    if isinstance(feature, Image):
        return {"image", "map"}
    if isinstance(feature, ClassLabel):
        return {"class", "scalar"}
    if isinstance(feature, (Array2D, Array3D)):
        return {"map"}
    if isinstance(feature, (List, LargeList, list)):
        return {"map", "list"}
    if isinstance(feature, Value):
        dtype = feature.dtype
        if dtype in ("binary", "large_binary"):
            return {"image"}
        if dtype in ("string", "large_string"):
            return {"image", "video", "class", "scalar"}
        if dtype.startswith(("int", "uint", "bool")):
            return {"class", "scalar"}
        return {"scalar"}
    return set()


def lookup_feature(features: Any, column: str) -> Any:
    """The feature of a (possibly dotted) column; ConfigError-ready KeyError text on a miss."""
    from datasets import LargeList, List

    current, seen = features, []
    for part in column.split("."):
        while isinstance(current, (List, LargeList, list)):  # a list of structs: look inside
            current = current[0] if isinstance(current, list) else current.feature
        if not isinstance(current, dict) or part not in current:
            where = f"in column {'.'.join(seen)!r}" if seen else "in the dataset"
            names = ", ".join(current) if isinstance(current, dict) else "(not a struct)"
            raise KeyError(f"no column {part!r} {where}; available: {names}")
        current = current[part]
        seen.append(part)
    if seen and len(seen) > 1:  # a field of a list of structs is a list of that field
        return _listed(features, column, current)
    return current


def _listed(features: Any, column: str, leaf: Any) -> Any:
    from datasets import LargeList, List

    top = features[column.split(".")[0]]
    return List(leaf) if isinstance(top, (List, LargeList, list)) else leaf


def resolve_columns(mapping: str, overrides: dict, features: Any, input_: str) -> dict[str, str]:
    """role -> column for `mapping` with `overrides`, checked against the dataset's features."""
    if mapping not in MAPPINGS:
        raise ConfigError(f"mapping: must be one of {sorted(MAPPINGS)}, got {mapping!r}")
    roles = {**MAPPINGS[mapping]}
    allowed = sorted(set(roles) | set(OPTIONAL_ROLES))
    for role, column in overrides.items():
        if role not in allowed:
            raise ConfigError(f"columns.{role}: unknown role for mapping {mapping!r}; roles are {allowed}")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"columns.{role}: give a column name, got {column!r}")
        roles[role] = column
    if features is None:
        return roles
    available = ", ".join(features)
    for role, column in roles.items():
        try:
            feature = lookup_feature(features, column)
        except KeyError as exc:
            raise ConfigError(
                f"columns.{role}: {exc.args[0]} (dataset {input_!r}; its columns: {available}); "
                f"set columns.{role} to the column that holds the {role}"
            ) from None
        kind = role_kind(mapping, role)
        if feature_kind(feature) and kind not in feature_kind(feature):
            raise ConfigError(
                f"columns.{role}: column {column!r} is {feature!r}; the {role} must be "
                f"{_KIND_WORDS[kind]} (dataset columns: {available})"
            )
    return roles


def check_extra_annotations(specs: dict, taken: set[str], features: Any, input_: str) -> None:
    """`annotations: {task: {column, type, ...}}` checked like the roles (ConfigError names the entry)."""
    for task, spec in specs.items():
        where = f"annotations.{task}"
        if task in taken:
            raise ConfigError(f"{where}: the mapping already makes task {task!r}; pick another name")
        if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
            raise ConfigError(f"{where}: needs {{column: ..., type: one of {list(EXTRA_TYPES)}}}, got {spec!r}")
        if spec.get("type") not in EXTRA_TYPES:
            raise ConfigError(f"{where}.type: must be one of {list(EXTRA_TYPES)}, got {spec.get('type')!r}")
        unknown = sorted(set(spec) - EXTRA_KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {sorted(EXTRA_KEYS)}")
        if features is None:
            continue
        try:
            feature = lookup_feature(features, spec["column"])
        except KeyError as exc:
            raise ConfigError(
                f"{where}.column: {exc.args[0]} (dataset {input_!r}; its columns: {', '.join(features)})"
            ) from None
        if feature_kind(feature) and "map" not in feature_kind(feature):
            raise ConfigError(
                f"{where}.column: column {spec['column']!r} is {feature!r}; "
                f"a {spec['type']} map must be {_KIND_WORDS['map']}"
            )


def class_names(features: Any, column: str) -> list[str] | None:
    """ClassLabel names of a label column (None when labels are stored as they are)."""
    from datasets import ClassLabel

    if features is None:
        return None
    feature = lookup_feature(features, column)
    return list(feature.names) if isinstance(feature, ClassLabel) else None


# --- row values (worker side, pure) -----------------------------------------------------------------
def image_bytes(value: Any, column: str) -> bytes:
    """The encoded bytes of an Image / binary / path value."""
    if value is None:
        raise RowError("missing_value", column, "empty (null) image")
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
        if not value:
            raise RowError("missing_value", column, "image has neither bytes nor path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(value) as f:
                return f.read()
        except Exception as exc:  # noqa: BLE001 - a dangling path is a bad row
            raise RowError("unreadable_file", column, f"{value}: {type(exc).__name__}") from None
    raise RowError("bad_image", column, f"expected image bytes or a path, got {type(value).__name__}")


def decode_photo(value: Any, column: str, min_size: int | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """An image cell -> upright RGB (reduced JPEG decode down to min_size); RowError when undecodable."""
    try:
        return decode_image(image_bytes(value, column), min_size=min_size, max_pixels=max_pixels)
    except ImageError as exc:
        raise RowError(exc.reason, column, exc.detail) from None


def video_path(value: Any, column: str, base: str | None) -> str:
    """A video cell -> a file path decord can open (relative paths under `base`, a local folder)."""
    if isinstance(value, dict):
        if not value.get("path"):
            if value.get("bytes"):
                raise RowError(
                    "embedded_video",
                    column,
                    "video bytes without a path; write the videos to files and give their paths",
                )
            raise RowError("missing_value", column, "video has neither path nor bytes")
        value = value["path"]
    if not isinstance(value, str) or not value:
        raise RowError("missing_value", column, f"no video path (got {value!r})")
    if base and "://" not in value and not os.path.isabs(value):
        return os.path.join(base, value)
    return value


def label_name(value: Any, column: str, names: list[str] | None) -> str:
    """A classification label -> the class name (ClassLabel name, or the value as text)."""
    if value is None or value == "":
        raise RowError("missing_value", column, "no label")
    if isinstance(value, (list, dict)):
        raise RowError("bad_label", column, f"expected one label, got {type(value).__name__}")
    if names is not None:
        if not isinstance(value, int) or value < 0:
            raise RowError("no_label", column, f"label {value!r} (unlabelled split)", status="skipped")
        if value >= len(names):
            raise RowError("bad_label", column, f"label {value} outside the {len(names)} class names")
        return names[value]
    if isinstance(value, int) and value < 0:
        raise RowError("no_label", column, f"label {value} (unlabelled)", status="skipped")
    return str(value)


def stored_array(value: Any, column: str) -> np.ndarray:
    """A map cell -> its stored values: PNG/TIFF values kept (palette indices, 16 bit), lists as arrays."""
    if value is None:
        raise RowError("missing_value", column, "empty (null) map")
    if isinstance(value, (dict, bytes, bytearray)) or (isinstance(value, str)):
        data = image_bytes(value, column)
        try:
            with PILImage.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode in ("RGBA", "LA"):
                    im = im.convert(im.mode[:-1])
                arr = np.asarray(im)
        except (OSError, SyntaxError, ValueError) as exc:
            raise RowError("undecodable_map", column, str(exc)[:200]) from None
    else:
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise RowError("bad_map_shape", column, str(exc)[:200]) from None
        if arr.dtype == object:
            raise RowError("bad_map_shape", column, "ragged rows")
    return arr


def dense_array(value: Any, column: str) -> np.ndarray:
    """A label/depth cell -> an (H, W) array of its stored values (equal RGB channels collapse)."""
    arr = stored_array(value, column)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        if not (arr[..., :1] == arr[..., 1:3]).all():
            raise RowError(
                "bad_map_shape",
                column,
                f"{arr.shape[2]}-channel map with channels that differ; expected one value per pixel",
            )
        arr = arr[..., 0]
    if arr.ndim != 2 or min(arr.shape) == 0:
        raise RowError("bad_map_shape", column, f"expected an (H, W) map, got shape {arr.shape}")
    return arr


def segmentation_labels(value: Any, column: str, reduce_zero_label: bool) -> np.ndarray:
    arr = dense_array(value, column)
    if arr.dtype.kind not in "iub":
        raise RowError("bad_label_map", column, f"class ids must be integers, got {arr.dtype}")
    return ade20k_png_to_labels(arr) if reduce_zero_label else np.where(arr < 0, IGNORE_INDEX, arr).astype(np.int32)


def depth_metres(value: Any, column: str, scale: float) -> np.ndarray:
    arr = dense_array(value, column)
    if arr.dtype.kind in "iub":
        return arr.astype(np.float32) / scale
    return arr.astype(np.float32)


def normal_vectors(value: Any, column: str) -> np.ndarray:
    """A normals cell -> float (H, W, 3): an (n + 1) / 2 encoded RGB PNG, or float vectors as stored."""
    arr = stored_array(value, column)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise RowError("bad_map_shape", column, f"normals must be (H, W, 3), got shape {arr.shape}")
    return normals_png_to_vectors(arr) if arr.dtype.kind in "iu" else arr[..., :3].astype(np.float32)


def extra_annotation(spec: dict, value: Any) -> Annotation:
    """One `annotations` entry's cell -> a record annotation of its type."""
    column, type_ = spec["column"], spec["type"]
    if type_ == "segmentation":
        return annotation("segmentation", segmentation_labels(value, column, bool(spec.get("reduce_zero_label", True))))
    if type_ == "depth":
        return annotation(
            "depth",
            depth_metres(value, column, float(spec.get("scale", 1000.0))),
            inverse=bool(spec.get("inverse", True)),
        )
    if type_ == "normals":
        return annotation("normals", normal_vectors(value, column))
    if type_ == "edges":
        return annotation("edges", dense_array(value, column), invert=bool(spec.get("invert", False)))
    arr = dense_array(value, column)
    if arr.dtype.kind not in "iub":
        raise RowError("bad_label_map", column, f"instance ids must be integers, got {arr.dtype}")
    return annotation("instances", arr.astype(np.int32))


def boxes_xyxy(
    boxes: Any, classes: Any, columns: tuple[str, str], bbox_format: str, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Box and class cells -> (N, 4) x0, y0, x1, y1 and (N,) ints, checked against the image size."""
    box_col, cls_col = columns
    if boxes is None:
        raise RowError("missing_value", box_col, "no boxes")
    if classes is None:
        raise RowError("missing_value", cls_col, "no classes")
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise RowError("bad_boxes", box_col, str(exc)[:200]) from None
    if arr.size == 0:
        raise RowError("no_annotations", box_col, "no boxes", status="skipped")
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise RowError("bad_boxes", box_col, f"expected (N, 4) boxes, got shape {arr.shape}")
    cls = np.asarray(classes)
    if cls.ndim != 1 or len(cls) != len(arr) or cls.dtype.kind not in "iu":
        got = f"{cls.tolist()!r}"[:120]
        raise RowError("bad_boxes", cls_col, f"{len(arr)} boxes need {len(arr)} integer classes, got {got}")
    xyxy = np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:]], axis=1) if bbox_format == "xywh" else arr
    if not np.isfinite(xyxy).all() or (xyxy[:, 2] <= xyxy[:, 0]).any() or (xyxy[:, 3] <= xyxy[:, 1]).any():
        raise RowError("bad_boxes", box_col, f"empty, negative or non-finite box in {arr.tolist()}"[:200])
    t = BOX_TOLERANCE_PX
    if (xyxy[:, :2] < -t).any() or (xyxy[:, 2] > width + t).any() or (xyxy[:, 3] > height + t).any():
        raise RowError("box_outside_image", box_col, f"boxes {arr.tolist()} vs image {width}x{height}"[:200])
    return xyxy, cls.astype(np.int64)
