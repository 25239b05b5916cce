"""Paired-folder adapter: `input/` and `target/` matched by file stem (relative path, no extension).

For style transfer, deraining, denoising, low-light enhancement, stereo (left as input, right as
target), super-resolution...: one task per folder pair. A file on one side with no partner is a
failure row ("unmatched_input" / "unmatched_target"), never a silent drop and never paired by
sorted position. The target gets the input's resize/crop (mapped onto its own grid when its
resolution differs, e.g. a 4x super-resolution target).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from uvd.annotated.records import AnnotationRecord, annotation, make_record
from uvd.config import require
from uvd.core import files
from uvd.sources.annotations.listing import by_stem


@dataclass
class PairsOptions:
    """adapters[i] with type: pairs."""

    task: str  # e.g. deraining, style_transfer, stereo, low_light, denoising
    root: str  # folder holding input/ and target/ (relative to the stage input)
    input: str = "input"
    target: str = "target"
    name: str = ""  # dataset name; default: the task
    split: str | None = None
    type: str = "pairs"

    def validate(self) -> None:
        require(self.task.replace("_", "").isalnum(), "task", f"use letters, digits and _, got {self.task!r}")


def list_items(opts: PairsOptions, root: str) -> Iterator[dict]:
    name = opts.name or opts.task
    base = files.join(root, opts.root)
    in_dir, tg_dir = files.join(base, opts.input), files.join(base, opts.target)
    inputs, bad_inputs = by_stem(in_dir, files.IMAGE_EXTS, "pairs", name, "input")
    targets, bad_targets = by_stem(tg_dir, files.IMAGE_EXTS, "pairs", name, "target")
    yield from bad_inputs + bad_targets
    for s in sorted(set(inputs) - set(targets)):
        yield {
            "adapter": "pairs",
            "dataset": name,
            "record_id": f"{name}/input/{s}",
            "failure": "unmatched_input",
            "detail": inputs[s],
        }
    for s in sorted(set(targets) - set(inputs)):
        yield {
            "adapter": "pairs",
            "dataset": name,
            "record_id": f"{name}/target/{s}",
            "failure": "unmatched_target",
            "detail": targets[s],
        }
    for s in sorted(set(inputs) & set(targets)):
        yield {
            "adapter": "pairs",
            "dataset": name,
            "task": opts.task,
            "record_id": f"{name}/{s}",
            "file": inputs[s],
            "target": targets[s],
            "split": opts.split,
        }


def load_record(item: dict, size: int = 256) -> AnnotationRecord:
    image = files.read_image(item["file"], min_size=size)
    target = files.read_image(item["target"], min_size=size)
    return make_record(
        item["record_id"],
        item["dataset"],
        image.pixels,
        {item["task"]: annotation("image", target.pixels)},
        split=item.get("split"),
        provenance={"path": item["file"], "target": item["target"]},
        full_size=(image.height, image.width),
    )
