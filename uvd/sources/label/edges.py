"""Edge experts: Canny (no model, the default) or a learned detector plugged in as a torch module.

Canny follows the annotations' convention: the record's edges annotation has data None, so the
renderer runs Canny (100, 200) on the image *after* its resize/crop to the output size (1 px
edges at 256, white on black). This handler runs that same render once to check the map is not
empty; the check's result is the image the renderer will draw.

A learned detector (HED, PiDiNet, TEED...: none ships in `transformers`; export one to TorchScript)
maps (B, 3, h, w) in [0, 1] to (B, 1, h', w') edge probabilities (`edges_output: logits` applies a
sigmoid first); the soft map is stored at the image's size and rendered white-on-black in gray.
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
from uvd.transforms.edges import render_edges
from uvd.transforms.image import apply_geometry, compute_geometry

EDGE_OUTPUTS = ("prob", "logits")
HED_PREPROCESS = Preprocess(size=(512, 512), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resample="bilinear")


class CannyHandler(ExpertHandler):
    """Canny at the output geometry; 'loads' nothing, so it asks for no accelerator."""

    task = "edges"
    uses_model = False

    def __init__(
        self, *, image_size: int = 256, resize: str = "crop", min_fraction: float = 0.002, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.image_size, self.resize, self.min_fraction = image_size, resize, min_fraction

    def load_model(self) -> None:
        return None

    def predict(self, model: None, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """-> the (size, size, 3) Canny render of each image, as the annotations renderer draws it."""
        out = []
        for image in images:
            geom = compute_geometry(image.shape[0], image.shape[1], self.image_size, self.resize)
            out.append(render_edges(apply_geometry(image, geom)))
        return out

    def to_annotation(self, output: np.ndarray, image: np.ndarray) -> dict:
        checks.check_edges(output, self.min_fraction)
        return annotation("edges", None)

    def model_id(self) -> str:
        return "canny(100,200)"


class LearnedEdgesHandler(ExpertHandler):
    """A learned edge detector (TorchScript or module:factory) -> soft edge maps."""

    task = "edges"

    def __init__(
        self,
        model: str,
        *,
        edges_output: str = "prob",
        preprocess: Preprocess = HED_PREPROCESS,
        min_fraction: float = 0.002,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if edges_output not in EDGE_OUTPUTS:
            raise ValueError(f"edges_output must be one of {EDGE_OUTPUTS}, got {edges_output!r}")
        self.model_spec, self.edges_output, self.preprocess = model, edges_output, preprocess
        self.min_fraction = min_fraction

    def load_model(self) -> Any:
        return load_torch_module(self.model_spec, self.device)

    def predict(self, model: Any, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """-> float32 (H, W) edge probabilities per image."""
        import torch
        import torch.nn.functional as F

        pred = run_dense_module(model, images, self.preprocess, self.precision, channels=1, what="edge")
        pred = torch.sigmoid(pred) if self.edges_output == "logits" else pred.clamp(0.0, 1.0)
        return [
            F.interpolate(pred[i][None], size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
            for i, image in enumerate(images)
        ]

    def to_annotation(self, output: np.ndarray, image: np.ndarray) -> dict:
        checks.check_edges(output, self.min_fraction)
        return annotation("edges", output.astype(np.float32))

    def model_id(self) -> str:
        return self.model_spec
