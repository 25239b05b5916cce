"""Surface-normal expert: any torch module mapping (B, 3, h, w) images to (B, 3, h', w') normals.

No library we depend on ships a normal estimator class (`transformers` has none), so this handler
takes a model through uvd.sources.label.torch_module: a TorchScript file or `module:factory`.
Published estimators to plug in (export with torch.jit.trace, or wrap in a factory):
- Omnidata v2 normals (DPT-Hybrid trained on Omnidata; EPFL-VILAB/omnidata-tools,
  `omnidata_dpt_normal_v2.ckpt`): input 384 x 384 in [0, 1], output (n + 1) / 2 in [0, 1]
  -> `--normals_range unit`. The closest to the LVM/Prismer experts.
- DSINE (torch.hub hugoycj/DSINE-hub) or Marigold normals (diffusers MarigoldNormalsPipeline,
  prs-eth/marigold-normals-*): wrap their predictor in a module returning unit vectors
  -> `--normals_range signed`.
Vectors go into the record as they come (camera frame, the model's axis convention) and render as
RGB = (n + 1) / 2 * 255, the convention of the dataset adapters' normals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uvd.annotated.records import annotation
from uvd.sources.label import checks
from uvd.sources.label.handler import ExpertHandler
from uvd.sources.label.hf import Preprocess
from uvd.sources.label.torch_module import load_torch_module, run_dense_module

NORMALS_RANGES = ("signed", "unit")  # model output: n in [-1, 1], or (n + 1) / 2 in [0, 1]
OMNIDATA_PREPROCESS = Preprocess(size=(384, 384), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resample="bilinear")


class NormalsHandler(ExpertHandler):
    task = "normals"

    def __init__(
        self,
        model: str,
        *,
        normals_range: str = "signed",
        preprocess: Preprocess = OMNIDATA_PREPROCESS,
        min_valid: float = 0.5,
        min_spread: float = 1e-2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if normals_range not in NORMALS_RANGES:
            raise ValueError(f"normals_range must be one of {NORMALS_RANGES}, got {normals_range!r}")
        self.model_spec, self.normals_range, self.preprocess = model, normals_range, preprocess
        self.min_valid, self.min_spread = min_valid, min_spread

    def load_model(self) -> Any:
        return load_torch_module(self.model_spec, self.device)

    def predict(self, model: Any, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """-> float32 (H, W, 3) normal vectors per image (resized bilinearly to the image)."""
        import torch.nn.functional as F

        pred = run_dense_module(model, images, self.preprocess, self.precision, channels=3, what="normals")
        if self.normals_range == "unit":
            pred = pred * 2.0 - 1.0
        out = []
        for i, image in enumerate(images):
            full = F.interpolate(pred[i][None], size=image.shape[:2], mode="bilinear", align_corners=False)
            out.append(full[0].permute(1, 2, 0).cpu().numpy())
        return out

    def to_annotation(self, output: np.ndarray, image: np.ndarray) -> dict:
        checks.check_normals(output, self.min_valid, self.min_spread)
        return annotation("normals", output.astype(np.float32))

    def model_id(self) -> str:
        return self.model_spec
