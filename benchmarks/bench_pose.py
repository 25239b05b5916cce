"""Pose pseudo-labels: person crops/s through MMPose RTMPose-t, batched vs one crop per forward pass.

One torch thread (crops/s/core), random weights (speed does not depend on them), real photos with
4 boxes each (whole image + 3 sub-boxes), through uvd.sources.pose.model.predict_keypoints, which
the RunInference handler calls: affine crop, normalise, forward, SimCC decode, back to image pixels.
Needs the uvd[pose] extra (make setup-pose); without it this prints why and exits 0.

    .venv/bin/python benchmarks/bench_pose.py [--images 16] [--max_crops 64]
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np

from uvd.sources.pose import model as pose_model
from uvd.transforms.image import decode_image

IMAGES = os.path.join(os.path.dirname(__file__), "..", "uvd", "sample", "images")


def photos_and_boxes(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    paths = sorted(glob.glob(os.path.join(IMAGES, "*.jpg")))
    decoded = [decode_image(open(p, "rb").read()).pixels for p in paths]
    images = [decoded[i % len(decoded)] for i in range(n)]
    boxes = []
    for im in images:
        h, w = im.shape[:2]
        boxes.append(
            np.array(
                [[0, 0, w, h], [0, 0, w / 2, h], [w / 2, 0, w, h], [w / 4, h / 4, 3 * w / 4, 3 * h / 4]], np.float32
            )
        )
    return images, boxes


def rate(pose, images, boxes, max_crops: int, repeats: int = 2) -> float:
    """Best of `repeats` passes, in crops/s."""
    crops = sum(len(b) for b in boxes)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        pose_model.predict_keypoints(pose, images, boxes, max_crops=max_crops)
        best = min(best, time.perf_counter() - start)
    return crops / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--max_crops", type=int, default=64)
    args = parser.parse_args()
    try:
        pose_model.import_mmpose()
    except pose_model.MissingExtraError as exc:
        print(f"pose: skipped ({exc})")
        return
    import torch

    torch.set_num_threads(1)
    pose = pose_model.load_pose_model("rtmpose-t")
    images, boxes = photos_and_boxes(args.images)
    rate(pose, images[:2], boxes[:2], args.max_crops, repeats=1)  # warm-up
    batched = rate(pose, images, boxes, args.max_crops)
    single = rate(pose, images, boxes, 1)
    print(
        f"pose: {batched:.1f} crops/s/core (RTMPose-t, {args.max_crops} crops per forward) vs baseline "
        f"{single:.1f} crops/s/core (one crop per forward) -> {batched / single:.2f}x"
    )


if __name__ == "__main__":
    main()
