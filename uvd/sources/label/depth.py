"""Depth expert: any `transformers` depth estimator (DPT by default: Intel/dpt-large, as Prismer).

DPT, Depth Anything and the MiDaS family predict relative inverse depth (disparity): the record
keeps it with "inverse": False, so render_depth normalises it min-max without inverting (near =
bright). Metric models (ZoeDepth, Depth Pro, Depth Anything "metric") predict depth in metres and
are stored as depth. The prediction is resized (bilinear, no overshoot) to the image's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uvd.annotated.records import annotation
from uvd.devices import autocast
from uvd.sources.label import checks
from uvd.sources.label.handler import ExpertHandler, to_batch
from uvd.sources.label.hf import Preprocess, load_hf_model, read_preprocess

DEFAULT_DEPTH_MODEL = "Intel/dpt-large"
# DPT's processor: 384 x 384 squash, bicubic, mean = std = 0.5.
DPT_PREPROCESS = Preprocess(size=(384, 384), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resample="bicubic")
METRIC_MODEL_TYPES = ("zoedepth", "depth_pro")


def is_metric(config: Any) -> bool:
    """True when the model predicts metric depth rather than disparity."""
    return (
        getattr(config, "model_type", "") in METRIC_MODEL_TYPES
        or getattr(config, "depth_estimation_type", "relative") == "metric"
    )


class DepthHandler(ExpertHandler):
    task = "depth"

    def __init__(
        self,
        checkpoint: str = DEFAULT_DEPTH_MODEL,
        *,
        min_valid: float = 0.5,
        min_relative_range: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.checkpoint = checkpoint
        self.min_valid, self.min_relative_range = min_valid, min_relative_range

    def load_model(self) -> Any:
        model = load_hf_model("AutoModelForDepthEstimation", self.checkpoint, self.device)
        model.uvd_preprocess = read_preprocess(self.checkpoint, DPT_PREPROCESS)
        return model

    def predict(self, model: Any, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, bool]]:
        """-> (prediction at the image's size, True if metric depth else disparity) per image."""
        import torch
        import torch.nn.functional as F

        pre: Preprocess = model.uvd_preprocess
        device = next(model.parameters()).device
        pixels = torch.from_numpy(to_batch(images, pre.size, pre.mean, pre.std, pre.resample)).to(device)
        with torch.inference_mode(), autocast(str(device), self.precision):
            pred = model(pixel_values=pixels).predicted_depth.float()  # (B, h, w)
        out = []
        for i, image in enumerate(images):
            full = F.interpolate(pred[i][None, None], size=image.shape[:2], mode="bilinear", align_corners=False)
            out.append((full[0, 0].cpu().numpy(), is_metric(model.config)))
        return out

    def to_annotation(self, output: tuple[np.ndarray, bool], image: np.ndarray) -> dict:
        depth, metric = output
        checks.check_depth(depth, self.min_valid, self.min_relative_range, disparity=not metric)
        return annotation("depth", depth.astype(np.float32), inverse=metric)

    def model_id(self) -> str:
        return self.checkpoint
