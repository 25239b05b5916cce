"""LAION metadata Parquet -> plain row dicts with canonical keys, split across workers by row group.

LAION releases spell columns in capitals (URL, TEXT, WIDTH, HEIGHT) and lower case (similarity,
hash, punsafe, pwatermark); derived sets drop or rename some. Only URL is required: a missing
optional column reads as None, and NaN (pandas' null) as None too.
"""

from __future__ import annotations

import math
from typing import Any

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


class ReadLaionMetadata(beam.PTransform):
    """PBegin -> normalized LAION rows. Beam's Parquet source splits the files by row group."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        columns = metadata_columns(self.pattern)
        return (
            pbegin
            | "ReadParquet" >> beam.io.ReadFromParquet(self.pattern, columns=sorted(set(columns.values())))
            | "Normalize" >> beam.Map(normalize_row, columns)
        )
