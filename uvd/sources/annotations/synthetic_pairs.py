"""Synthetic-pair adapter: any image folder -> colorization, inpainting, denoising, low-light, edges.

The input side is made from the image itself, after its resize/crop, seeded per record
(uvd.transforms.synthetic): colorization = gray -> colour, inpainting = black square (or 32 px
patches) -> image, denoising = noisy -> clean, low_light = dark -> normal. "edges" is the one
annotation direction here: image -> Canny (100, 200) edges, white on black.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from uvd.annotated.records import AnnotationRecord, annotation, make_record
from uvd.config import require
from uvd.core import files
from uvd.sources.annotations.listing import by_stem

# task -> record annotation
TASKS = {
    "colorization": ("synthetic", {"fn": "gray"}),
    "inpainting": ("synthetic", {"fn": "black_boxes", "mode": "square"}),
    "inpainting_patches": ("synthetic", {"fn": "black_boxes", "mode": "patches"}),
    "denoising": ("synthetic", {"fn": "noise"}),
    "low_light": ("synthetic", {"fn": "low_light"}),
    "edges": ("edges", None),
}


@dataclass
class SyntheticOptions:
    """adapters[i] with type: synthetic."""

    images: str
    tasks: list = field(default_factory=lambda: ["colorization", "inpainting"])
    name: str = "synthetic"
    limit: int = 0  # use only the first `limit` images by path (0 = all)
    split: str | None = None
    type: str = "synthetic"

    def validate(self) -> None:
        bad = sorted(set(self.tasks) - set(TASKS))
        require(bool(self.tasks) and not bad, "tasks", f"use some of {sorted(TASKS)}, got {self.tasks!r}")
        require(self.limit >= 0, "limit", f"must be >= 0, got {self.limit}")


def list_items(opts: SyntheticOptions, root: str) -> Iterator[dict]:
    folder = files.join(root, opts.images)
    stems, bad = by_stem(folder, files.IMAGE_EXTS, "synthetic", opts.name)
    yield from bad
    chosen = sorted(stems.items(), key=lambda kv: kv[1])
    for stem, path in chosen[: opts.limit] if opts.limit > 0 else chosen:
        yield {
            "adapter": "synthetic",
            "dataset": opts.name,
            "record_id": f"{opts.name}/{stem}",
            "file": path,
            "tasks": list(opts.tasks),
            "split": opts.split,
        }


def load_record(item: dict, size: int = 256) -> AnnotationRecord:
    decoded = files.read_image(item["file"], min_size=size)
    anns = {task: annotation(TASKS[task][0], TASKS[task][1]) for task in item["tasks"]}
    return make_record(
        item["record_id"],
        item["dataset"],
        decoded.pixels,
        anns,
        split=item.get("split"),
        provenance={"path": item["file"]},
        full_size=(decoded.height, decoded.width),
    )
