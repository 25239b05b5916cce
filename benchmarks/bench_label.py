"""Expert pseudo-labels: images/s per expert, batched vs one image per forward pass, in one run.

CPU (always): the small randomly initialised experts of uvd.sources.label.tiny, one torch thread
(img/s/core), through each handler's run_inference (preprocess, forward, resize back, checks).
GPU (when CUDA is visible): real-size architectures (DPT-Large, SegFormer-B5 configs, random
weights since none can be downloaded here) in bf16 autocast, batched vs per-image.

    .venv/bin/python benchmarks/bench_label.py [--images 32] [--batch 16]
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

import numpy as np

from uvd.sources.label import tiny
from uvd.sources.label.depth import DepthHandler
from uvd.sources.label.edges import CannyHandler, LearnedEdgesHandler
from uvd.sources.label.handler import ExpertHandler, new_item
from uvd.sources.label.hf import Preprocess
from uvd.sources.label.normals import NormalsHandler
from uvd.sources.label.segmentation import SegmentationHandler
from uvd.transforms.image import decode_image

IMAGES = os.path.join(os.path.dirname(__file__), "..", "uvd", "sample", "images")


def photos(n: int) -> list[np.ndarray]:
    """n real photos (the committed samples, repeated), decoded as the stage does (sides >= 256)."""
    paths = sorted(glob.glob(os.path.join(IMAGES, "*.jpg")))
    decoded = [decode_image(open(p, "rb").read(), min_size=256).pixels for p in paths]
    return [decoded[i % len(decoded)] for i in range(n)]


def rate(handler: ExpertHandler, model, images: list[np.ndarray], batch: int, repeats: int = 2) -> float:
    """Best of `repeats` passes, in images/s."""
    best = float("inf")
    handler.run_inference([new_item("warm", images[0])], model)
    for _ in range(repeats):
        items = [new_item(str(i), im) for i, im in enumerate(images)]
        start = time.perf_counter()
        for i in range(0, len(items), batch):
            handler.run_inference(items[i : i + batch], model)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def compare(name: str, handler: ExpertHandler, images: list[np.ndarray], batch: int, unit: str) -> None:
    model = handler.load_model()
    batched, single = rate(handler, model, images, batch), rate(handler, model, images, 1)
    print(
        f"{name}: {batched:.1f} {unit} batched ({batch}) vs baseline {single:.1f} {unit} per-image "
        f"-> {batched / single:.2f}x",
        flush=True,
    )


def cpu(n: int, batch: int) -> None:
    import torch

    torch.set_num_threads(1)
    images = photos(n)
    small = Preprocess(size=(128, 128), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resample="bilinear")
    with tempfile.TemporaryDirectory() as tmp:
        experts = [
            ("depth (tiny DPT, 64px in)", DepthHandler(tiny.save_tiny_dpt(f"{tmp}/dpt"), device="cpu")),
            (
                "segmentation (tiny SegFormer, 64px in, 150 classes)",
                SegmentationHandler(tiny.save_tiny_segformer(f"{tmp}/seg"), device="cpu"),
            ),
            (
                "normals (3-conv TorchScript, 128px in)",
                NormalsHandler(tiny.save_tiny_torchscript(f"{tmp}/n.pt", 3), device="cpu", preprocess=small),
            ),
            (
                "edges learned (3-conv TorchScript, 128px in)",
                LearnedEdgesHandler(
                    tiny.save_tiny_torchscript(f"{tmp}/e.pt", 1), device="cpu", edges_output="logits", preprocess=small
                ),
            ),
            ("edges (Canny at 256)", CannyHandler()),
        ]
        for name, handler in experts:
            compare(f"{name} CPU", handler, images, batch, "img/s/core")


def gpu(n: int, batch: int) -> None:
    """Real-size architectures, random weights, bf16 autocast on CUDA."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, SegformerConfig, SegformerForSemanticSegmentation

    images = photos(n)
    with tempfile.TemporaryDirectory() as tmp:
        DPTForDepthEstimation(DPTConfig()).save_pretrained(f"{tmp}/dpt-large")  # Intel/dpt-large's config
        b5 = SegformerConfig(
            depths=[3, 6, 40, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768, num_labels=150
        )  # SegFormer-B5
        SegformerForSemanticSegmentation(b5).save_pretrained(f"{tmp}/segformer-b5")
        for name, handler in [
            ("depth (DPT-Large, 384px, bf16)", DepthHandler(f"{tmp}/dpt-large", device="cuda")),
            ("segmentation (SegFormer-B5, 512px, bf16)", SegmentationHandler(f"{tmp}/segformer-b5", device="cuda")),
        ]:
            torch.cuda.synchronize()
            compare(f"{name} {torch.cuda.get_device_name()}", handler, images, batch, "img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    cpu(args.images, args.batch)
    import torch

    if torch.cuda.is_available():
        gpu(4 * args.images, 4 * args.batch)
    else:
        print("GPU: no CUDA device visible; real-size bf16 numbers need one")


if __name__ == "__main__":
    main()
