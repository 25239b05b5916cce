"""`uvd preview`: a contact sheet PNG of a few decoded sentences per source, to see the data at a glance.

Reads the first sentences of each source from the shards (in shard order, which is the shuffled
order, so they are a random sample), decodes their tokens with the VQGAN the dataset was built
with (recorded in stats/dataset.json, else the default), and lays them out one sentence per row:
a label (source, kind, id) then up to `--max_images` thumbnails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from collections.abc import Iterable

import numpy as np
import pyarrow.parquet as pq

from uvd import schema
from uvd.transforms.image import thumbnail

LABEL_WIDTH = 180
GAP = 2


def shard_files(path: str) -> list[str]:
    """A dataset folder, a glob or one file -> the shard files in order."""
    if os.path.isdir(path):
        files = glob.glob(os.path.join(path, "*-of-*.parquet")) or glob.glob(os.path.join(path, "*.parquet"))
    else:
        files = glob.glob(path)
    return sorted(files)


def sample_sentences(
    files: Iterable[str], per_source: int, sources: set[str] | None = None, max_files: int = 2
) -> list[dict]:
    """The first `per_source` sentences of every source, reading only as far as needed: until each
    of `sources` (from the card's stats) has enough, or `max_files` shards when they are unknown."""
    picked: dict[str, list[dict]] = {}
    for n, f in enumerate(files):
        if sources is None and n >= max_files:
            break
        for batch in pq.ParquetFile(f).iter_batches(batch_size=256):
            for row in batch.to_pylist():
                rows = picked.setdefault(row["source"], [])
                if len(rows) < per_source:
                    rows.append(row)
            if sources is not None and all(len(picked.get(s, [])) >= per_source for s in sources):
                return [r for source in sorted(picked) for r in picked[source]]
    return [r for source in sorted(picked) for r in picked[source]]


def contact_sheet(rows: list[tuple[str, np.ndarray]], thumb: int = 64, max_images: int = 16) -> np.ndarray:
    """(label, images NHWC uint8) per row -> one RGB sheet; labels drawn in a left column."""
    from PIL import Image, ImageDraw

    columns = min(max_images, max((len(images) for _, images in rows), default=1))
    width = LABEL_WIDTH + columns * (thumb + GAP)
    height = max(1, len(rows)) * (thumb + GAP)
    sheet = np.full((height, width, 3), 255, dtype=np.uint8)
    for r, (_, images) in enumerate(rows):
        y = r * (thumb + GAP)
        for i, image in enumerate(images[:max_images]):
            x = LABEL_WIDTH + i * (thumb + GAP)
            sheet[y : y + thumb, x : x + thumb] = thumbnail(image, thumb)
    canvas = Image.fromarray(sheet)
    draw = ImageDraw.Draw(canvas)
    for r, (label, _) in enumerate(rows):
        draw.multiline_text((4, r * (thumb + GAP) + 4), label, fill=(0, 0, 0), spacing=2)
    return np.asarray(canvas)


def recorded(dataset_dir: str) -> dict:
    """The card's summary (stats/dataset.json) when `dataset_dir` is a uvd dataset folder."""
    path = os.path.join(dataset_dir, "stats", "dataset.json")
    if os.path.isdir(dataset_dir) and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def preview(
    shards: str, output: str, checkpoint: str | None = None, per_source: int = 1, max_images: int = 8, thumb: int = 64
) -> int:
    """Write the contact sheet; returns the number of sentences shown."""
    from PIL import Image

    from uvd.tokenize import DEFAULT_CHECKPOINT, decode, load_vqgan

    marker = os.path.join(shards, schema.COMPLETE_MARKER)
    if os.path.isdir(os.path.join(shards, "stats")) and not os.path.exists(marker):
        raise FileNotFoundError(
            f"--shards: {shards} has no {schema.COMPLETE_MARKER}: its `uvd dataset` build did not "
            "finish (killed or still running); rerun the build first"
        )
    files = shard_files(shards)
    if not files:
        raise FileNotFoundError(f"--shards: no shard files under {shards!r}; run `uvd dataset` first")
    summary = recorded(shards)
    sources = {r["source"] for r in summary["totals"]["by_source"]} if summary.get("totals") else None
    rows = sample_sentences(files, per_source, sources)
    recorded_checkpoint = summary.get("tokenizer_checkpoint")
    model = load_vqgan(
        checkpoint
        or (None if not recorded_checkpoint or recorded_checkpoint.startswith("default") else recorded_checkpoint)
        or DEFAULT_CHECKPOINT
    )
    sheet_rows = []
    for row in rows:
        n = min(row["num_images"], max_images)
        ids = np.asarray(row["tokens"], dtype=np.uint16)[: n * schema.TOKENS_PER_IMAGE]
        images = decode(model, ids.reshape(n, schema.TOKENS_PER_IMAGE))
        label = f"{row['source']}\n{row['kind']}, {row['num_images']} images\n{row['sentence_id'][:16]}"
        sheet_rows.append((label, images))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    Image.fromarray(contact_sheet(sheet_rows, thumb, max_images)).save(output)
    return len(rows)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd preview", description=__doc__.splitlines()[0])
    parser.add_argument("--shards", required=True, help="dataset folder (uvd dataset --output), a glob or a shard")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--checkpoint", default=None, help="VQGAN folder or hub id (default: the one the dataset used)")
    parser.add_argument("--per_source", type=int, default=1, help="sentences shown per source")
    parser.add_argument(
        "--max_images",
        type=int,
        default=8,
        help="images decoded and shown per sentence (VQGAN decoding is the slow part on CPU)",
    )
    parser.add_argument("--thumb", type=int, default=64, help="thumbnail side in pixels")
    args = parser.parse_args(argv)
    n = preview(args.shards, args.output, args.checkpoint, args.per_source, args.max_images, args.thumb)
    print(f"[uvd preview] {n} sentences -> {args.output}")
    return 0
