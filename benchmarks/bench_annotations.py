"""COCO path: annotated records per second on one core, uvd's vs a straightforward per-record one.

Each record: one COCO image with its boxes and polygon masks -> the 256x256 image plus a
detection image (box outlines) and a segmentation image (class colours), PNG-encoded with
content ids, as the stage emits them.
uvd: one decode (JPEG at reduced DCT scale when the image is large), one geometry, boxes drawn
at 256 px as 4 slice assignments each, masks merged into one label map and resized once with
nearest neighbour. Baseline: what per-task scripts do: decode the image again for each task, draw
on a full-resolution canvas with cv2.rectangle / per-object mask painting, then resize each
rendered image (nearest for the label image).
Inputs: the sample photos upscaled to ~1600 px JPEGs (q 90; COCO-2017's larger images and
Objects365/OpenImages are 1000-1600 px) with 12 boxes + polygons each, in a temp folder.

    .venv/bin/python benchmarks/bench_annotations.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uvd.annotated.render import record_image_rows, render_record  # noqa: E402
from uvd.schema import image_id_for  # noqa: E402
from uvd.sources.annotations import coco  # noqa: E402
from uvd.transforms.detection import BOX_PALETTE  # noqa: E402
from uvd.transforms.image import encode_png  # noqa: E402
from uvd.transforms.segmentation import ADE20K_PALETTE  # noqa: E402

SECONDS = 8.0
LONG_SIDE = 1600
OBJECTS = 12


def make_dataset(folder: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    photos = sorted((ROOT / "uvd" / "sample" / "images").glob("*.jpg"))[:10]
    images, anns = [], []
    for i, path in enumerate(photos, start=1):
        im = Image.open(path).convert("RGB")
        s = LONG_SIDE / max(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BICUBIC)
        im.save(folder / path.name, quality=90)
        w, h = im.size
        images.append({"id": i, "file_name": path.name, "height": h, "width": w})
        for _ in range(OBJECTS):
            bw, bh = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            angles = np.sort(rng.uniform(0, 2 * np.pi, 10))
            px = x + bw / 2 + np.cos(angles) * bw / 2
            py = y + bh / 2 + np.sin(angles) * bh / 2
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(rng.integers(1, 81)),
                    "bbox": [x, y, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                    "segmentation": [np.stack([px, py], 1).ravel().tolist()],
                }
            )
    cats = [{"id": c, "name": f"c{c}"} for c in range(1, 81)]
    (folder / "instances.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    opts = coco.CocoOptions(annotations="instances.json", images=".", tasks=["detection", "segmentation"])
    return list(coco.list_items(opts, str(folder)))


def uvd_record(item: dict) -> int:
    record = coco.load_record(item, size=256)
    rows, _, _ = record_image_rows(record, render_record(record), bucket=0)
    return len(rows)


def _crop_resize(arr: np.ndarray, interp: int) -> np.ndarray:
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(arr[top : top + side, left : left + side], (256, 256), interpolation=interp)


def baseline_record(item: dict) -> int:
    """Per task: decode again, draw at full resolution, resize the drawing."""
    from pycocotools import mask as mask_utils

    rows = []
    anns = sorted(item["anns"], key=lambda a: -a["area"])
    for task in ("detection", "segmentation"):
        bgr = cv2.imread(item["file"], cv2.IMREAD_COLOR)  # repeated full decode
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        canvas = np.zeros_like(rgb)
        for a in anns:
            cls = item["categories"][str(a["category_id"])]
            if task == "detection":
                x, y, bw, bh = a["bbox"]
                t = max(1, round(3 * min(h, w) / 256))
                color = tuple(int(c) for c in BOX_PALETTE[cls])
                cv2.rectangle(canvas, (int(x), int(y)), (int(x + bw) - 1, int(y + bh) - 1), color, t)
            else:
                rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))
                canvas[mask_utils.decode(rle).astype(bool)] = ADE20K_PALETTE[cls]
        image256 = _crop_resize(rgb, cv2.INTER_AREA)
        ann256 = _crop_resize(canvas, cv2.INTER_NEAREST)
        for px in (image256, ann256):
            rows.append({"image_id": image_id_for(px), "image": encode_png(px)})
    return len(rows)


def rate(fn, items: list[dict]) -> float:
    fn(items[0])  # warm up imports
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        for item in items:
            fn(item)
            n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    cv2.setNumThreads(1)  # per core
    with tempfile.TemporaryDirectory() as tmp:
        items = make_dataset(Path(tmp))
        ours = rate(uvd_record, items)
        base = rate(baseline_record, items)
    print(
        f"annotations (COCO detection + segmentation, {LONG_SIDE} px, {OBJECTS} objects): "
        f"{ours:.1f} records/s/core vs baseline {base:.1f} records/s/core "
        f"(per-task decode, full-res drawing, resize) -> {ours / base:.2f}x"
    )


if __name__ == "__main__":
    main()
