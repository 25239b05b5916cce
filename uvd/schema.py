"""The shard contract and the intermediate tables: the one place their columns are defined.

Every stage and the trainer import from here. Nothing here imports Beam, torch or OpenCV, so the
trainer can depend on it alone.

Shard rows (one visual sentence each):
    sentence_id  string        stable: same inputs + same seed -> same id
    source       string        e.g. "laion", "video", "objaverse", "imagenet_class", "ann/<task>"
    kind         string        one of SENTENCE_KINDS
    num_images   int16         1..MAX_IMAGES_PER_SENTENCE
    tokens       list<uint16>  num_images * TOKENS_PER_IMAGE codes in 0..CODEBOOK_SIZE-1
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pyarrow as pa

from uvd.hashing import unit_hash

# --- vocabulary and geometry (the LVM's) --------------------------------------------------------
IMAGE_SIZE = 256  # pixels per side of every image in a sentence
DOWNSAMPLE = 16  # VQGAN f=16
GRID = IMAGE_SIZE // DOWNSAMPLE  # 16x16 codes per image
TOKENS_PER_IMAGE = GRID * GRID  # 256
CODEBOOK_SIZE = 8192  # codes 0..8191
BOS_ID = 8192  # added by the trainer before each sentence
EOS_ID = 8193  # added by the trainer after each sentence
VOCAB_SIZE = 8292  # as the official LVM configs (room for special tokens)
MAX_IMAGES_PER_SENTENCE = 16
CONTEXT_LENGTH = 4096

SENTENCE_KINDS = ("single", "sequence", "annotated", "annotated_video")

# --- the shard contract ---------------------------------------------------------------------------
SHARD_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("num_images", pa.int16(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint16()), nullable=False),
    ]
)

# A dataset folder is complete only when this file exists: `uvd dataset` writes it last, after the
# shards, failures, stats and card (uvd.assembly.publish); readers (uvd.model, uvd preview) check it.
COMPLETE_MARKER = "_COMPLETE.json"

# --- intermediate tables (any stage can start from the previous one's output) --------------------
# images: one row per unique 256x256 RGB image; image_id is the content hash of its pixels.
IMAGES_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),  # PNG or JPEG bytes (LAION: jpeg q95 by default), 256x256 RGB
        pa.field("source", pa.string(), nullable=False),
        pa.field("provenance", pa.string()),  # JSON: url, path, frame, view...
    ]
)

# sentences: an ordered list of image ids; `group` decides the split (no group in two splits).
SENTENCES_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("image_ids", pa.list_(pa.string()), nullable=False),
        pa.field("group", pa.string(), nullable=False),  # video id, object uid, image id...
        pa.field("split", pa.string()),  # fixed by the source, else null
    ]
)

TOKENS_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint16()), nullable=False),
    ]
)

# failures: the dead-letter table. status "failed" (bad input), "filtered" (rejected by a rule
# from config) or "skipped" (valid input that yields nothing here, e.g. a video too short).
FAILURE_STATUSES = ("failed", "filtered", "skipped")
FAILURES_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)

# --- shard files: names and split vocabulary (the writer, the trainer's loader, preview, decode) ---
SPLITS = ("train", "validation")  # the vocabulary uvd writes (a source's own split names map here)
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
SHARD_GLOB = "*-?????-of-?????.parquet"  # every shard of a dataset folder
SHARD_NAME = re.compile(r"^(?P<split>[a-z][a-z0-9_]*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def normalize_split(split: str | None) -> str | None:
    """A split name as it appears in file names: lower case, [a-z0-9_], aliases folded (val -> validation)."""
    if split is None or split == "":
        return None
    split = re.sub(r"[^a-z0-9_]", "_", str(split).strip().lower())
    return SPLIT_ALIASES.get(split, split)


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def planned_names(plan: dict[str, int]) -> list[str]:
    return [shard_name(split, i, n) for split, n in sorted(plan.items()) for i in range(n)]


def split_for(group: str, validation_fraction: float, seed: int) -> str:
    """train/validation from the group alone, so every sentence of a group lands in one split.

    The group is not namespaced by source: the same image id used as a group by two sources goes
    to the same split in both (uvd.assembly.shards.KeepImagesInOneSplit settles images that two
    groups share).
    """
    return "validation" if unit_hash(seed, "split", group) < validation_fraction else "train"


def split_shard_glob(split: str) -> str:
    """The shards of one split in a dataset folder (aliases accepted: val -> validation-*)."""
    return f"{normalize_split(split)}-?????-of-?????.parquet"


TABLE_SCHEMAS = {
    "images": IMAGES_SCHEMA,
    "sentences": SENTENCES_SCHEMA,
    "tokens": TOKENS_SCHEMA,
    "failures": FAILURES_SCHEMA,
}


# --- record builders (plain dicts are what flows through Beam) -----------------------------------
def image_id_for(pixels_rgb: Any) -> str:
    """Content hash of the final pixels (uint8 HxWx3), so identical images dedupe anywhere."""
    import numpy as np

    arr = np.ascontiguousarray(pixels_rgb, dtype=np.uint8)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def sentence_id_for(source: str, *parts: Any) -> str:
    """Stable sentence id from its source and the inputs that define it (ids, seed, stride...)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(source.encode())
    for part in parts:
        h.update(b"\x1f")
        h.update(str(part).encode())
    return h.hexdigest()


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class RecordError(ValueError):
    """An input that becomes a failure row, not a crash (errors as values): `reason` is the row's short
    key, `status` its FAILURE_STATUSES entry ("failed" bad input, "skipped" valid but nothing to use)."""

    def __init__(self, reason: str, detail: str = "", status: str = "failed") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


def failure_row(record_id: str, source: str, stage: str, reason: str, detail: str = "", status: str = "failed") -> dict:
    """One dead-letter row. `reason` is a short machine key (http_404, too_small...)."""
    if status not in FAILURE_STATUSES:
        raise ValueError(f"status must be one of {FAILURE_STATUSES}, got {status!r}")
    return {
        "record_id": str(record_id),
        "source": source,
        "stage": stage,
        "status": status,
        "reason": reason,
        # Without object addresses (PIL's "<_io.BytesIO object at 0x7f...>"): the same bad input must
        # give the same row in every process, runner and rerun (tests/runners compares them).
        "detail": _ADDRESS.sub("", detail)[:500],
    }


def sentence_row(
    sentence_id: str, source: str, kind: str, image_ids: list[str], group: str, split: str | None = None
) -> dict:
    if kind not in SENTENCE_KINDS:
        raise ValueError(f"kind must be one of {SENTENCE_KINDS}, got {kind!r}")
    if not 1 <= len(image_ids) <= MAX_IMAGES_PER_SENTENCE:
        raise ValueError(f"a sentence has 1..{MAX_IMAGES_PER_SENTENCE} images, got {len(image_ids)}")
    return {
        "sentence_id": sentence_id,
        "source": source,
        "kind": kind,
        "image_ids": list(image_ids),
        "group": group,
        "split": split,
    }
