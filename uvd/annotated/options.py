"""How annotated sentences are made: the options every stage that makes them embeds.

annotations, hf, label and pose Configs subclass `AnnotatedOptions` (keyword-only fields, so a
stage's own required `input` can come first), so the rendering and sentence options, their flags
and their checks exist once.
"""

from __future__ import annotations

from dataclasses import dataclass

from uvd.annotated.sentences import PAIRS_PER_SENTENCE
from uvd.config import require
from uvd.schema import IMAGE_SIZE
from uvd.transforms.image import MODES


@dataclass(kw_only=True)
class AnnotatedOptions:
    image_size: int = IMAGE_SIZE  # output side in pixels
    resize: str = "crop"  # crop (shorter side + centre crop) | squash (official LVM code)
    seed: int = 0  # seeds synthetic inputs, pair chunks and m picks
    pairs_per_sentence: int = PAIRS_PER_SENTENCE  # (input, output) pairs per sentence (8 -> 16 images)
    min_pairs: int = 2  # a pool's last chunk below this becomes 'skipped' rows
    pair_buckets: int = 1  # pools per (dataset, task, split); raise (e.g. 1024) for big data
    multi_annotation: bool = True  # images with >= multi_min_annotations outputs -> m-of-(1+k)
    multi_min_annotations: int = 2  # annotations an image needs for a multi-annotation sentence

    def validate_annotated(self) -> None:
        """The shared checks; each stage's validate() calls this."""
        require(self.image_size >= 16, "image_size", f"must be >= 16, got {self.image_size}")
        require(self.resize in MODES, "resize", f"must be one of {MODES}, got {self.resize!r}")
        require(
            1 <= self.pairs_per_sentence <= PAIRS_PER_SENTENCE,
            "pairs_per_sentence",
            f"must be 1..{PAIRS_PER_SENTENCE}, got {self.pairs_per_sentence}",
        )
        require(
            1 <= self.min_pairs <= self.pairs_per_sentence,
            "min_pairs",
            f"must be 1..pairs_per_sentence, got {self.min_pairs}",
        )
        require(self.pair_buckets >= 1, "pair_buckets", f"must be >= 1, got {self.pair_buckets}")
        require(self.multi_min_annotations >= 1, "multi_min_annotations", "must be >= 1")
