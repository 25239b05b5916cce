"""LAION metadata Parquet -> plain row dicts with canonical keys, split across workers in chunks.

LAION releases spell columns in capitals (URL, TEXT, WIDTH, HEIGHT) and lower case (similarity,
hash, punsafe, pwatermark); derived sets drop or rename some. Only URL is required: a missing
optional column reads as None, and NaN (pandas' null) as None too.

The work is split into Chunks (a file's row range inside one row group) listed from the Parquet
footers on a worker; a chunk's rows are read lazily in batches where they are processed, and each
row carries `_position` = "<file name>#<row index in the file>" (the record id of a row with no URL).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

# canonical key -> accepted column names (first match wins, case-insensitive)
COLUMNS: dict[str, tuple[str, ...]] = {
    "url": ("URL", "url"),
    "text": ("TEXT", "caption", "text"),
    "width": ("WIDTH", "width"),
    "height": ("HEIGHT", "height"),
    "similarity": ("similarity",),
    "hash": ("hash",),
    "punsafe": ("punsafe",),
    "pwatermark": ("pwatermark",),
}


def column_map(names: list[str]) -> dict[str, str]:
    """Canonical key -> the column that holds it among `names` (only keys that are present)."""
    lower = {n.lower(): n for n in names}
    found = {}
    for key, candidates in COLUMNS.items():
        for cand in candidates:
            if cand.lower() in lower:
                found[key] = lower[cand.lower()]
                break
    return found


def metadata_columns(pattern: str) -> dict[str, str]:
    """Read the first matching file's schema (footer only) to pick the columns to read."""
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"no LAION metadata file matches {pattern!r}")
    first = sorted(m.path for m in matches)[0]
    with FileSystems.open(first) as f:
        names = pq.read_schema(f).names
    found = column_map(names)
    if "url" not in found:
        raise ValueError(f"{first}: no URL column (have {names}); LAION metadata needs URL or url")
    return found


def metadata_rows(pattern: str, max_files: int = 64) -> int | None:
    """Rows in the metadata (Parquet footers only), the total that progress lines count towards;
    None past `max_files` files, where reading every footer up front would cost more than it tells."""
    try:
        paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        if not paths or len(paths) > max_files:
            return None
        total = 0
        for path in paths:
            with FileSystems.open(path) as f:
                total += pq.ParquetFile(f).metadata.num_rows
        return total
    except Exception:  # noqa: BLE001 - a total is a nicety; the read itself reports real problems
        return None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def normalize_row(raw: dict, columns: dict[str, str] | None = None) -> dict:
    """A raw Parquet row -> {url, text, width, height, similarity, hash, punsafe, pwatermark}."""
    columns = columns if columns is not None else column_map(list(raw))
    return {key: _clean(raw.get(columns[key])) if key in columns else None for key in COLUMNS}


class Chunk(NamedTuple):
    path: str
    row_group: int
    start: int  # rows [start, stop) of the row group
    stop: int
    offset: int  # index in the file of the row group's first row


def list_chunks(pattern: str, chunk_rows: int = 1000) -> Iterator[Chunk]:
    """Every matching file's row groups, cut in ranges of at most chunk_rows (footers only)."""
    for path in sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list):
        with FileSystems.open(path) as f:
            meta = pq.ParquetFile(f).metadata
        offset = 0
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            for start in range(0, n, chunk_rows):
                yield Chunk(path, rg, start, min(n, start + chunk_rows), offset)
            offset += n


def read_chunk(chunk: Chunk, columns: dict[str, str], batch_rows: int = 256) -> Iterator[dict]:
    """A chunk's normalized rows, read a batch at a time (memory flat in the chunk's size)."""
    name = os.path.basename(chunk.path)
    wanted = sorted(set(columns.values()))
    with FileSystems.open(chunk.path) as f:
        index = 0
        for batch in pq.ParquetFile(f).iter_batches(
            batch_size=batch_rows, row_groups=[chunk.row_group], columns=wanted
        ):
            if index + batch.num_rows <= chunk.start:
                index += batch.num_rows
                continue
            for raw in batch.to_pylist():
                if chunk.start <= index < chunk.stop:
                    row = normalize_row(raw, columns)
                    row["_position"] = f"{name}#{chunk.offset + index}"
                    yield row
                index += 1
            if index >= chunk.stop:
                return


class ReadLaionMetadata(beam.PTransform):
    """PBegin -> Chunks of the metadata files, spread across workers (rows are read by read_chunk)."""

    def __init__(self, pattern: str, chunk_rows: int = 1000) -> None:
        super().__init__()
        self.pattern, self.chunk_rows = pattern, chunk_rows

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Pattern" >> beam.Create([self.pattern])
            | "ListChunks" >> beam.FlatMap(list_chunks, self.chunk_rows)
            | "Spread" >> beam.Reshuffle()
        )
