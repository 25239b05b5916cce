"""Read and write the intermediate tables (images, sentences, tokens, failures) as Parquet.

Each stage's CLI writes its tables under an output folder as `<folder>/<table>/part-*.parquet`, so
the next stage can start from them on a laptop. Schemas come from uvd.schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from uvd.schema import TABLE_SCHEMAS

if TYPE_CHECKING:
    from uvd.core.outputs import SourceOutputs


def table_prefix(folder: str, table: str) -> str:
    return FileSystems.join(folder, table, "part")


def table_pattern(folder: str, table: str) -> str:
    return FileSystems.join(folder, table, "part*.parquet")


def _to_arrow_row(row: dict) -> dict:
    tokens = row.get("tokens")
    if isinstance(tokens, np.ndarray):
        row = {**row, "tokens": tokens.astype(np.uint16).tolist()}
    return row


class WriteTable(beam.PTransform):
    """Write dict rows of one intermediate table under `folder/<table>/` (zstd Parquet)."""

    def __init__(self, folder: str, table: str, num_shards: int = 0) -> None:
        super().__init__(f"Write{table.title()}")
        if table not in TABLE_SCHEMAS:
            raise ValueError(f"table must be one of {sorted(TABLE_SCHEMAS)}, got {table!r}")
        self.folder, self.table, self.num_shards = folder, table, num_shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        schema = TABLE_SCHEMAS[self.table]
        return (
            rows
            | "ToArrowRow" >> beam.Map(_to_arrow_row)
            | "Parquet"
            >> beam.io.WriteToParquet(
                table_prefix(self.folder, self.table),
                schema,
                codec="zstd",
                file_name_suffix=".parquet",
                num_shards=self.num_shards,
            )
        )


class ReadTable(beam.PTransform):
    """Read one intermediate table written by WriteTable (splits by row group across workers)."""

    def __init__(self, folder: str, table: str) -> None:
        super().__init__(f"Read{table.title()}")
        if table not in TABLE_SCHEMAS:
            raise ValueError(f"table must be one of {sorted(TABLE_SCHEMAS)}, got {table!r}")
        self.folder, self.table = folder, table

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return pbegin | "Parquet" >> beam.io.ReadFromParquet(table_pattern(self.folder, self.table))


class DedupImages(beam.PTransform):
    """Keep one row per image_id: the same pixels are stored and tokenized once."""

    def expand(self, images: beam.PCollection) -> beam.PCollection:
        return (
            images
            | "KeyById" >> beam.Map(lambda r: (r["image_id"], r))
            | "OnePerId" >> beam.CombinePerKey(first_by_provenance)
            | "Values" >> beam.Values()
        )


def first_by_provenance(rows):
    """Deterministic pick among duplicates (smallest provenance), whatever the runner's order."""
    return min(rows, key=lambda r: (r.get("provenance") or "", r["source"]))


def write_source_tables(out: SourceOutputs, folder: str) -> None:
    """What a source stage run alone writes: its deduplicated images, sentences and failures."""
    _ = out.images | "DedupImages" >> DedupImages() | WriteTable(folder, "images")
    _ = out.sentences | WriteTable(folder, "sentences")
    _ = out.failures | WriteTable(folder, "failures")
