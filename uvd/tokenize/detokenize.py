"""`uvd decode`: tokens table or shards -> PNGs, for previews and debugging.

    uvd decode --input out/laion --output out/laion/png            # tokens table: <image_id>.png
    uvd decode --input out/sample/shards --output /tmp/s --limit 8   # shards: one strip per sentence

A tokens table row becomes one 256x256 PNG; a shard row (uvd.schema.SHARD_SCHEMA) becomes one
horizontal strip of its num_images images, named <sentence_id>.png. Plain pyarrow + batched decode:
previews are small, so no Beam here. Use the checkpoint that made the tokens. (Named detokenize,
not decode, so that `from uvd.tokenize import decode` always means the function.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from uvd.schema import TOKENS_PER_IMAGE
from uvd.tokenize import DEFAULT_CHECKPOINT


def parquet_files(path: str | Path) -> list[Path]:
    """A .parquet file, a folder holding a tokens table (<folder>/tokens/), or a folder of shards."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "tokens").is_dir():
        path = path / "tokens"
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet files (expected a tokens table or shards)")
    return files


def read_rows(files: list[Path], limit: int | None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, ids (num_images, 256)) per row, from tokens tables or shards, up to `limit` rows."""
    seen = 0
    for f in files:
        names = set(pq.read_schema(f).names)
        if {"image_id", "tokens"} <= names:
            key = "image_id"
        elif {"sentence_id", "tokens"} <= names:
            key = "sentence_id"
        else:
            raise ValueError(f"{f}: neither a tokens table nor a shard (columns: {sorted(names)})")
        table = pq.read_table(f, columns=[key, "tokens"])
        for name, tokens in zip(table.column(key).to_pylist(), table.column("tokens").to_numpy(zero_copy_only=False)):
            ids = np.asarray(tokens, dtype=np.int64)
            if ids.size % TOKENS_PER_IMAGE:
                raise ValueError(f"{f}: row {name} has {ids.size} tokens, not a multiple of {TOKENS_PER_IMAGE}")
            yield str(name), ids.reshape(-1, TOKENS_PER_IMAGE)
            seen += 1
            if limit is not None and seen >= limit:
                return


def decode_to_pngs(
    input_path: str,
    output: str,
    checkpoint: str = DEFAULT_CHECKPOINT,
    limit: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> list[Path]:
    """Write one PNG per row; returns the paths written."""
    from PIL import Image

    from uvd.tokenize.codec import decode
    from uvd.tokenize.load import load_vqgan

    model = load_vqgan(checkpoint, device=device)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, ids in read_rows(parquet_files(input_path), limit):
        pixels = decode(model, ids, batch_size=batch_size)  # (num_images, 256, 256, 3)
        strip = np.concatenate(list(pixels), axis=1)  # side by side, in order
        path = out / f"{name}.png"
        Image.fromarray(strip).save(path)
        written.append(path)
    return written


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd decode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="tokens table folder, shards folder or one .parquet file")
    parser.add_argument("--output", required=True, help="folder for the PNGs")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="VQGAN folder or hub id")
    parser.add_argument("--limit", type=int, default=None, help="decode at most this many rows")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default=None, help="cpu (default), cuda...")
    args = parser.parse_args(argv)
    written = decode_to_pngs(args.input, args.output, args.checkpoint, args.limit, args.batch_size, args.device)
    print(f"uvd decode: wrote {len(written)} PNGs to {args.output}", file=sys.stderr)
    return 0
