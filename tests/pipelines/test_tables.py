"""Intermediate tables round-trip through Parquet with the schemas of uvd.schema."""

import glob

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from uvd import schema
from uvd.core.tables import DedupImages, ReadTable, WriteTable


def test_tokens_table_roundtrip_uint16(tmp_path):
    rows = [{"image_id": f"i{k}", "tokens": np.arange(256, dtype=np.uint16) + k} for k in range(3)]
    with TestPipeline() as p:
        _ = p | beam.Create(rows) | WriteTable(str(tmp_path), "tokens")
    files = glob.glob(str(tmp_path / "tokens" / "part*.parquet"))
    table = pq.read_table(files)
    assert table.schema.equals(schema.TOKENS_SCHEMA, check_metadata=False)
    got = {r["image_id"]: r["tokens"] for r in table.to_pylist()}
    assert got["i2"][:3] == [2, 3, 4]
    with TestPipeline() as p:
        back = p | ReadTable(str(tmp_path), "tokens") | beam.Map(lambda r: (r["image_id"], r["tokens"][0]))
        assert_that(back, equal_to([("i0", 0), ("i1", 1), ("i2", 2)]))


def test_dedup_keeps_one_row_per_image_deterministically():
    rows = [
        {"image_id": "a", "image": b"1", "source": "laion", "provenance": "z"},
        {"image_id": "a", "image": b"1", "source": "video", "provenance": "b"},
        {"image_id": "c", "image": b"2", "source": "laion", "provenance": "x"},
    ]
    with TestPipeline() as p:
        out = p | beam.Create(rows) | DedupImages() | beam.Map(lambda r: (r["image_id"], r["provenance"]))
        assert_that(out, equal_to([("a", "b"), ("c", "x")]))
