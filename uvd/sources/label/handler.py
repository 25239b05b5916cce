"""The one interface every expert follows: a Beam ModelHandler over label items.

An item is a plain dict that travels through the experts in turn, each adding its annotation:

    {"record_id": str, "image": uint8 (H, W, 3), "provenance": {...},
     "annotations": {task: annotation}, "skipped": {task: [reason, detail]}, "error": None | [reason, detail]}

So experts chain as `RunInference(depth) | RunInference(segmentation) | ...` with no join, and the
last step turns the item into an annotation record (uvd.annotated.records).

A subclass says how to load its model (`load_model`) and how to label a batch of images
(`predict`: list of uint8 images -> list of per-image outputs), and how one output becomes an
annotation (`to_annotation`, which raises `Degenerate` for outputs that must not become sentences).
This base class does the rest: the model loads once per worker (RunInference), batches come from
Beam's BatchElements, the device is picked once ('auto' -> CUDA when visible), bf16 autocast on
CUDA, the accelerator resource hint applies to the inference step only, and a batch that raises
is retried image by image so one bad image never fails its neighbours.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

PRECISIONS = ("auto", "fp32", "bf16")


class Degenerate(ValueError):
    """An expert output with nothing to learn from (constant depth, one class, no edges)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def new_item(record_id: str, image: np.ndarray, provenance: dict | None = None) -> dict:
    """A fresh label item for one decoded RGB image."""
    return {
        "record_id": record_id,
        "image": image,
        "provenance": dict(provenance or {}),
        "annotations": {},
        "skipped": {},
        "error": None,
    }


class ExpertHandler(ModelHandler[dict, dict, Any]):
    """Base ModelHandler: label items in, the same items out with `task` annotated (or skipped)."""

    task: str = ""  # the annotation's task name, e.g. "depth" (pair sentences: ann/<task>)
    uses_model: bool = True  # False for Canny: no resource hint, nothing to load

    def __init__(
        self,
        *,
        device: str = "auto",
        precision: str = "auto",
        min_batch_size: int = 1,
        max_batch_size: int = 16,
        accelerator: str | None = None,
        large_model: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(f"need 1 <= min_batch_size <= max_batch_size, got {min_batch_size}, {max_batch_size}")
        self.device, self.precision = device, precision
        self.min_batch_size, self.max_batch_size = min_batch_size, max_batch_size
        self.accelerator = accelerator
        self._share_across_processes = large_model

    # --- what an expert defines ------------------------------------------------------------------
    def load_model(self) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, images: Sequence[np.ndarray]) -> list[Any]:
        """uint8 (H, W, 3) images of any sizes -> one raw output per image, at that image's size."""
        raise NotImplementedError

    def to_annotation(self, output: Any, image: np.ndarray) -> dict:
        """One output -> an annotation (records.annotation); raise Degenerate to skip it."""
        raise NotImplementedError

    def model_id(self) -> str:
        """What produced the labels, kept in each record's provenance."""
        return type(self).__name__

    # --- shared -----------------------------------------------------------------------------------
    def run_inference(
        self, batch: Sequence[dict], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[dict]:
        todo = [item for item in batch if item.get("error") is None]
        if todo:
            try:
                outputs = self.predict(model, [item["image"] for item in todo])
            except Exception:  # noqa: BLE001 - retry one by one, so only the bad image fails
                outputs = [self._predict_one(model, item) for item in todo]
            for item, output in zip(todo, outputs):
                if item.get("error") is None:
                    self._annotate(item, output)
        return list(batch)

    def _predict_one(self, model: Any, item: dict) -> Any:
        try:
            return self.predict(model, [item["image"]])[0]
        except Exception as exc:  # noqa: BLE001 - becomes this item's failure row
            item["error"] = [
                f"{self.task}_exception_{type(exc).__name__}",
                f"{exc} | {traceback.format_exc(limit=2)[-200:]}",
            ]
            return None

    def _annotate(self, item: dict, output: Any) -> None:
        try:
            item["annotations"][self.task] = self.to_annotation(output, item["image"])
            item["provenance"].setdefault("experts", {})[self.task] = self.model_id()
        except Degenerate as exc:
            item["skipped"][self.task] = [exc.reason, exc.detail]
        except Exception as exc:  # noqa: BLE001 - a bad output fails its item, not the batch
            item["error"] = [f"{self.task}_exception_{type(exc).__name__}", str(exc)[:300]]

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_resource_hints(self) -> dict[str, str]:
        return {"accelerator": self.accelerator} if self.accelerator and self.uses_model else {}

    def get_metrics_namespace(self) -> str:
        return f"uvd.label.{self.task}"

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        return sum(item["image"].nbytes for item in batch)


def to_batch(
    images: Sequence[np.ndarray],
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    resample: str = "bicubic",
) -> np.ndarray:
    """Images of any sizes -> float32 (B, 3, h, w): squashed to `size` (h, w) as the HF processors
    do (keep_aspect_ratio false), scaled to [0, 1], then (x - mean) / std."""
    import cv2

    interp = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}[resample]
    h, w = size
    out = np.empty((len(images), 3, h, w), np.float32)
    mean_ = np.asarray(mean, np.float32).reshape(3, 1, 1)
    std_ = np.asarray(std, np.float32).reshape(3, 1, 1)
    for i, image in enumerate(images):
        resized = (
            cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interp)
            if image.shape[:2] != (h, w)
            else image
        )
        out[i] = (resized.transpose(2, 0, 1).astype(np.float32) / 255.0 - mean_) / std_
    return out


def nearest_resize(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """A label map (h, w) of any dtype -> (height, width) by nearest neighbour (pixel centres)."""
    h, w = labels.shape[:2]
    if (h, w) == (height, width):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]
