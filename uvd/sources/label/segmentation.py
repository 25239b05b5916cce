"""Segmentation expert: any `transformers` semantic segmenter (SegFormer by default) or Mask2Former.

The default, nvidia/segformer-b5-finetuned-ade-640-640, predicts the 150 ADE20K classes in
MMSegmentation's order (0 = wall, 1 = building, ...), which is the order of the palette in
uvd.transforms.segmentation: its class ids go into the record unchanged and render with the
documented ADE20K palette. Models trained on other label sets (Cityscapes' 19...) give ids that
the renderer maps onto the same palette (indices >= 150 wrap).

Mask2Former / MaskFormer checkpoints (e.g. facebook/mask2former-swin-large-ade-semantic) load with
AutoModelForUniversalSegmentation; their per-pixel class scores are the query class probabilities
(the "no object" column dropped) weighted by the sigmoid query masks, summed over queries.

Logits (B, C, h/4, w/4) are upsampled (bilinear) to the model's input size, where the argmax is
taken, and the class map then resized to the image with nearest neighbour. The processor's
post_process_semantic_segmentation upsamples C logit planes to the full image instead: the same
map up to sub-input-pixel boundaries, at C times the memory (80% of the tiny model's CPU time went there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uvd.annotated.records import annotation
from uvd.devices import autocast
from uvd.sources.label import checks
from uvd.sources.label.handler import ExpertHandler, nearest_resize, to_batch
from uvd.sources.label.hf import Preprocess, load_hf_model, read_preprocess

DEFAULT_SEGMENTATION_MODEL = "nvidia/segformer-b5-finetuned-ade-640-640"
# SegFormer's processor: 512 x 512 squash, bilinear, ImageNet mean/std.
UNIVERSAL_MODEL_TYPES = ("mask2former", "maskformer")
SEGFORMER_PREPROCESS = Preprocess(
    size=(512, 512), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), resample="bilinear"
)


def class_scores(outputs: Any) -> Any:
    """Per-pixel class scores (B, C, h, w): a semantic model's logits, or for Mask2Former/MaskFormer
    sum over queries of P(class | query) * sigmoid(mask of query)."""
    import torch

    if getattr(outputs, "logits", None) is not None:
        return outputs.logits
    probs = outputs.class_queries_logits.float().softmax(dim=-1)[..., :-1]  # (B, Q, C), no "no object"
    masks = outputs.masks_queries_logits.float().sigmoid()  # (B, Q, h, w)
    return torch.einsum("bqc,bqhw->bchw", probs, masks)


class SegmentationHandler(ExpertHandler):
    task = "segmentation"

    def __init__(
        self, checkpoint: str = DEFAULT_SEGMENTATION_MODEL, *, max_class_fraction: float = 0.99, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.checkpoint = checkpoint
        self.max_class_fraction = max_class_fraction

    def load_model(self) -> Any:
        from transformers import AutoConfig

        universal = AutoConfig.from_pretrained(self.checkpoint).model_type in UNIVERSAL_MODEL_TYPES
        auto_class = "AutoModelForUniversalSegmentation" if universal else "AutoModelForSemanticSegmentation"
        model = load_hf_model(auto_class, self.checkpoint, self.device)
        model.uvd_preprocess = read_preprocess(self.checkpoint, SEGFORMER_PREPROCESS)
        return model

    def predict(self, model: Any, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """-> int32 (H, W) class ids per image."""
        import torch
        import torch.nn.functional as F

        pre: Preprocess = model.uvd_preprocess
        device = next(model.parameters()).device
        pixels = torch.from_numpy(to_batch(images, pre.size, pre.mean, pre.std, pre.resample)).to(device)
        with torch.inference_mode(), autocast(str(device), self.precision):
            logits = class_scores(model(pixel_values=pixels))  # (B, C, h / 4, w / 4)
            labels = [
                F.interpolate(one[None].float(), size=pre.size, mode="bilinear", align_corners=False)[0]
                .argmax(dim=0)
                .to(torch.int32)
                .cpu()
                .numpy()
                for one in logits
            ]  # one image at a time
        return [nearest_resize(lab, image.shape[0], image.shape[1]) for lab, image in zip(labels, images)]

    def to_annotation(self, output: np.ndarray, image: np.ndarray) -> dict:
        checks.check_segmentation(output, self.max_class_fraction)
        return annotation("segmentation", output)

    def model_id(self) -> str:
        return self.checkpoint
