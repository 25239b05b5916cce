"""Annotated video adapter (DAVIS-style): frames + per-frame palette masks -> annotated_video sentences.

    JPEGImages/<clip>/00000.jpg ...      Annotations/<clip>/00000.png ...   (palette PNG, index = object id)

One item per clip. Frames pair with masks by stem; frames without a mask are left out of the clip
(DAVIS test clips label only frame 0) and counted in provenance. All frames share one geometry
(the clip's), masks resize with nearest neighbour and render with the fixed palette
(object i -> INSTANCE_PALETTE[i - 1], background black). Sentences: windows of up to 8 frames, each in
both orders {f1, a1, f2, a2, ...} and {f1, ..., f8, a1, ..., a8}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from uvd.annotated.records import RecordError
from uvd.annotated.sentences import FRAMES_PER_WINDOW
from uvd.config import require
from uvd.core import files
from uvd.sources.annotations.listing import by_stem
from uvd.transforms.image import apply_geometry, compute_geometry
from uvd.transforms.segmentation import render_instance_ids


@dataclass
class VideoOptions:
    """adapters[i] with type: video."""

    frames: str  # folder of clip folders of frames
    masks: str  # folder of clip folders of palette PNG masks
    task: str = "video_segmentation"
    name: str = "davis"
    window: int = FRAMES_PER_WINDOW  # frames per sentence (<= 8: 2 images per frame)
    frame_step: int = 1  # take every n-th annotated frame
    split: str | None = None
    type: str = "video"

    def validate(self) -> None:
        require(1 <= self.window <= FRAMES_PER_WINDOW, "window", f"must be 1..{FRAMES_PER_WINDOW}, got {self.window}")
        require(self.frame_step >= 1, "frame_step", f"must be >= 1, got {self.frame_step}")


def list_items(opts: VideoOptions, root: str) -> Iterator[dict]:
    frames_dir, masks_dir = files.join(root, opts.frames), files.join(root, opts.masks)
    clips: dict[str, dict[str, dict[str, str]]] = {}
    for kind, folder, exts in (("frames", frames_dir, files.IMAGE_EXTS), ("masks", masks_dir, (".png",))):
        found, bad = by_stem(folder, exts, "video", opts.name, kind)
        yield from bad
        for rel, path in sorted(found.items()):
            clip, _, frame = rel.rpartition("/")
            clips.setdefault(clip or ".", {"frames": {}, "masks": {}})[kind][frame] = path
    for clip, found in sorted(clips.items()):
        if not found["frames"]:
            yield {
                "adapter": "video",
                "dataset": opts.name,
                "record_id": f"{opts.name}/{clip}",
                "failure": "unmatched_annotation",
                "detail": f"{len(found['masks'])} masks, no frames",
            }
            continue
        both = sorted(set(found["frames"]) & set(found["masks"]))[:: opts.frame_step]
        yield {
            "adapter": "video",
            "dataset": opts.name,
            "record_id": f"{opts.name}/{clip}",
            "clip": clip,
            "task": opts.task,
            "frames": [found["frames"][f] for f in both],
            "masks": [found["masks"][f] for f in both],
            "window": opts.window,
            "split": opts.split,
            "unlabelled_frames": len(found["frames"]) - len(set(found["frames"]) & set(found["masks"])),
        }


def render_clip(item: dict, size: int = 256, mode: str = "crop") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames, rendered masks) at size x size, one geometry for the whole clip."""
    if len(item["frames"]) < 2:
        raise RecordError("too_short", f"{len(item['frames'])} annotated frames", status="skipped")
    frames, masks, geom, full = [], [], None, None
    for frame_path, mask_path in zip(item["frames"], item["masks"]):
        decoded = files.read_image(frame_path, min_size=size)
        ids = files.read_array(mask_path)
        ids = ids[..., 0] if ids.ndim == 3 else ids
        if geom is None:
            full = (decoded.height, decoded.width)
            geom = compute_geometry(decoded.height, decoded.width, size, mode)
        if (decoded.height, decoded.width) != full:
            raise RecordError(
                "frame_size_mismatch", f"{frame_path}: {decoded.width}x{decoded.height} vs {full[1]}x{full[0]}"
            )
        if ids.shape != full:
            raise RecordError("annotation_size_mismatch", f"{mask_path}: {ids.shape} vs {full}")
        frames.append(apply_geometry(decoded.pixels, geom))
        masks.append(render_instance_ids(apply_geometry(ids.astype(np.int32), geom, nearest=True)))
    return frames, masks
