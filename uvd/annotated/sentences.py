"""Sentence builders for annotated images and annotated video (plain functions, no Beam).

- Pair tasks: up to `pairs_per_sentence` (8) (input, output) pairs of one task and one dataset,
  concatenated: in1, out1, in2, out2, ... (16 images); kind "annotated", source "ann/<task>".
- Multi-annotation: for an image with k annotations, m of the 1 + k images (m <= 16, seeded),
  the image first, then m - 1 of its annotations in a seeded order; kind "annotated",
  source "ann/multi".
- Annotated video: a window of frames f1..fn with annotations a1..an, in both orders,
  {f1, a1, f2, a2, ...} and {f1, ..., fn, a1, ..., an}; kind "annotated_video",
  source "ann_video/<task>".
Sentence ids hash the source, the ordered image ids and the seed: same inputs -> same id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from uvd import hashing
from uvd.schema import MAX_IMAGES_PER_SENTENCE, sentence_id_for, sentence_row
from uvd.transforms.synthetic import record_rng

PAIRS_PER_SENTENCE = MAX_IMAGES_PER_SENTENCE // 2
FRAMES_PER_WINDOW = MAX_IMAGES_PER_SENTENCE // 2


class Pair(NamedTuple):
    """One rendered (input, output) pair of a record for one task."""

    record_id: str
    input_id: str
    output_id: str


def stable_hash(*parts: object) -> int:
    return hashing.stable_int(*parts)


def bucket_of(group: str, buckets: int) -> int:
    """Which pair pool a record joins: all tasks of one group land in the same bucket (split-safe)."""
    return stable_hash("bucket", group) % max(1, buckets)


def pool_group(dataset: str, bucket: int) -> str:
    """The sentence `group` of a pair pool: splits assigned by group never cut a record."""
    return f"ann/{dataset}/{bucket}"


def chunk_pairs(
    pairs: Sequence[Pair], seed: int, pairs_per_sentence: int = PAIRS_PER_SENTENCE, min_pairs: int = 2
) -> tuple[list[list[Pair]], list[Pair]]:
    """Deterministic chunks: order by a seeded hash of the record id (whatever order pairs arrived in),
    cut into chunks of `pairs_per_sentence`; a last chunk with fewer than `min_pairs` is left over."""
    ordered = sorted(pairs, key=lambda p: (stable_hash(seed, p.record_id), p.record_id, p.input_id))
    chunks = [list(ordered[i : i + pairs_per_sentence]) for i in range(0, len(ordered), pairs_per_sentence)]
    leftover: list[Pair] = []
    if chunks and len(chunks[-1]) < min_pairs:
        leftover = chunks.pop()
    return chunks, leftover


def pair_sentence(chunk: Sequence[Pair], task: str, group: str, split: str | None, seed: int) -> dict:
    image_ids = [i for p in chunk for i in (p.input_id, p.output_id)]
    source = f"ann/{task}"
    return sentence_row(sentence_id_for(source, seed, *image_ids), source, "annotated", image_ids, group, split)


def multi_annotation_sentence(
    image_id: str,
    annotation_ids: dict[str, str],
    record_id: str,
    group: str,
    split: str | None,
    seed: int,
    m: int | None = None,
) -> dict | None:
    """The image first, then m - 1 of its k annotations (seeded choice and order); None if k < 1.

    m defaults to a seeded draw in 2..min(1 + k, 16) so sentence lengths vary as in the paper.
    """
    tasks = sorted(annotation_ids)
    k = len(tasks)
    if k < 1:
        return None
    rng = record_rng(seed, record_id, "multi")
    top = min(1 + k, MAX_IMAGES_PER_SENTENCE)
    m = int(rng.integers(2, top + 1)) if m is None else max(2, min(int(m), top))
    picked = [tasks[i] for i in rng.permutation(k)[: m - 1]]
    image_ids = [image_id] + [annotation_ids[t] for t in picked]
    source = "ann/multi"
    return sentence_row(sentence_id_for(source, seed, *image_ids), source, "annotated", image_ids, group, split)


def video_sentences(
    frame_ids: Sequence[str],
    annotation_ids: Sequence[str],
    task: str,
    group: str,
    split: str | None,
    window: int = FRAMES_PER_WINDOW,
    min_frames: int = 2,
) -> Iterator[dict]:
    """Non-overlapping windows of `window` frames; each gives an interleaved and a grouped sentence.

    A last window shorter than `min_frames` is dropped (the caller reports it when nothing is made).
    """
    if len(frame_ids) != len(annotation_ids):
        raise ValueError(f"{len(frame_ids)} frames but {len(annotation_ids)} annotations")
    window = max(1, min(window, MAX_IMAGES_PER_SENTENCE // 2))
    source = f"ann_video/{task}"
    for start in range(0, len(frame_ids), window):
        frames = list(frame_ids[start : start + window])
        anns = list(annotation_ids[start : start + window])
        if len(frames) < min_frames:
            continue
        interleaved = [i for pair in zip(frames, anns) for i in pair]
        grouped = frames + anns
        for order, ids in (("interleaved", interleaved), ("grouped", grouped)):
            yield sentence_row(
                sentence_id_for(source, group, start, order, *ids), source, "annotated_video", ids, group, split
            )
