"""Benchmark the publishing step: mix + split + global shuffle + shard writing, and shard size.

1. Throughput: rows/s of Mix -> AssignSplits -> WriteShards (Beam, local runner) versus writing
   the same rows unshuffled to one Parquet file in one call (pyarrow, no Beam): the price of a
   deterministic global shuffle that never gathers the data in one worker.
2. Size: bytes per token of the final shards, on real tokens (the default VQGAN over the shipped
   sample photos, random crops, every image once) and on synthetic Zipf-distributed codes, versus
   the official LVM format (JSON lines of base64 int32 tokens, ~5.3 B/token) on the same rows.

    .venv/bin/python benchmarks/bench_shards.py
"""

from __future__ import annotations

import base64
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from uvd import schema  # noqa: E402
from uvd.assembly import (
    mix,  # noqa: E402
    shards,  # noqa: E402
)

N_ROWS = 6000


ZIPF = 1.0 / np.arange(1, schema.CODEBOOK_SIZE + 1) ** 0.8


def synthetic_row(i: int) -> dict:
    """Row i: Zipf-distributed codes (skewed like a trained codebook's use), a tenth 16-image sequences."""
    rng = np.random.default_rng(i)
    k = 16 if i % 10 == 0 else 1
    tokens = rng.choice(schema.CODEBOOK_SIZE, 256 * k, p=ZIPF / ZIPF.sum()).astype(np.uint16)
    return {
        "sentence_id": schema.sentence_id_for("bench", i),
        "source": "laion" if k == 1 else "video",
        "kind": "single" if k == 1 else "sequence",
        "num_images": k,
        "tokens": tokens,
        "group": f"g{i}",
        "split": None,
        "entry": "laion" if k == 1 else "video",
    }


def real_token_rows(limit: int = 96) -> list[dict] | None:
    """Every sample photo, in random 256px crops at a few scales, tokenized once by the default VQGAN."""
    try:
        from PIL import Image

        from uvd.tokenize import DEFAULT_CHECKPOINT, encode, load_vqgan

        model = load_vqgan(DEFAULT_CHECKPOINT)
    except Exception as exc:  # noqa: BLE001 - the size figure on real tokens is optional
        print(f"(no real tokens: {exc})")
        return None
    rng = np.random.default_rng(0)
    crops = []
    for path in sorted(glob.glob(str(ROOT / "uvd" / "sample" / "images" / "*.jpg"))):
        image = Image.open(path).convert("RGB")
        for scale in (256, 320, 400, 512):
            w, h = image.size
            s = scale / min(w, h)
            im = np.asarray(image.resize((max(256, round(w * s)), max(256, round(h * s))), Image.BICUBIC))
            y, x = rng.integers(0, im.shape[0] - 255), rng.integers(0, im.shape[1] - 255)
            crops.append(im[y : y + 256, x : x + 256])
    crops = np.stack(crops[:limit])
    ids = encode(model, crops)
    return [
        {
            "sentence_id": f"real{i}",
            "source": "laion",
            "kind": "single",
            "num_images": 1,
            "tokens": t,
            "group": f"r{i}",
            "split": "train",
            "entry": "laion",
        }
        for i, t in enumerate(ids)
    ]


def mix_shuffle_write(n: int, out: str) -> float:
    """Rows are made inside the pipeline (as upstream steps would); beam.Create of big rows is slow."""
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    start = time.perf_counter()
    with beam.Pipeline(options=options) as p:
        mixed = (
            p
            | beam.Create(range(n))
            | beam.Map(synthetic_row)
            | shards.AssignSplits(0.01, 0)
            | mix.Mix({"laion": 0.6, "video": 0.4}, {}, "tokens", seed=0)
        )
        _ = mixed | shards.WriteShards(out, seed=0, target_shard_mb=8, row_group_mb=2)
    return time.perf_counter() - start


def plain_write(rows: list[dict], path: str) -> float:
    start = time.perf_counter()
    table = shards.shard_table([shards.to_shard_row(r, 0.0) for r in rows])
    shards.write_parquet_atomic(path, table, 4 * 2**20)
    return time.perf_counter() - start


def bytes_per_token(rows: list[dict], tmp: str) -> tuple[float, float]:
    path = os.path.join(tmp, "size-00000-of-00001.parquet")
    size = shards.write_parquet_atomic(path, shards.shard_table([shards.to_shard_row(r, 0.0) for r in rows]), 4 * 2**20)
    tokens = sum(len(r["tokens"]) for r in rows)
    jsonl = sum(
        len(json.dumps({"tokens": base64.b64encode(np.asarray(r["tokens"], np.int32).tobytes()).decode()})) + 1
        for r in rows
    )
    return size / tokens, jsonl / tokens


def main() -> None:
    start = time.perf_counter()
    rows = [synthetic_row(i) for i in range(N_ROWS)]
    make_s = time.perf_counter() - start  # the pipeline makes the same rows: count it on both sides
    with tempfile.TemporaryDirectory() as tmp:
        ours_s = mix_shuffle_write(N_ROWS, os.path.join(tmp, "mixed"))
        written = sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob(os.path.join(tmp, "mixed", "*.parquet")))
        base_s = make_s + plain_write(rows, os.path.join(tmp, "plain.parquet"))
        ours, base = len(rows) / ours_s, len(rows) / base_s
        print(
            f"mix+shuffle+write: {ours:.1f} rows/s ({written} rows written of {len(rows)} in, local Beam runner) "
            f"vs baseline {base:.1f} rows/s (same rows made, then written unshuffled in one pyarrow call) -> {ours / base:.2f}x"
        )
        bpt, jsonl = bytes_per_token(rows, tmp)
        print(
            f"shard size (synthetic Zipf codes): {bpt:.3f} B/token vs baseline {jsonl:.3f} B/token "
            f"(official base64 int32 JSONL) -> {jsonl / bpt:.2f}x smaller"
        )
        real = real_token_rows()
        if real:
            bpt, jsonl = bytes_per_token(real, tmp)
            used = len(np.unique(np.concatenate([r["tokens"] for r in real])))
            print(
                f"shard size (real tokens, default VQGAN on {len(real)} sample crops, {used} distinct codes): "
                f"{bpt:.3f} B/token vs baseline {jsonl:.3f} B/token (official base64 int32 JSONL) "
                f"-> {jsonl / bpt:.2f}x smaller (goal <= 1.4 B/token)"
            )


if __name__ == "__main__":
    main()
