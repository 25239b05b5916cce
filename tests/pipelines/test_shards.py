"""Shards: compose by image id, split by group, seeded global shuffle, atomic byte-stable writes."""

from __future__ import annotations

import glob
import hashlib
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.fake_sources import fake_tokens
from uvd import schema
from uvd.assembly import shards
from uvd.core import files
from uvd.core.outputs import FAILURES


def _sentences(n: int) -> list[dict]:
    """n sentences of 1..4 images over a pool of shared images; groups of 3 sentences."""
    out = []
    for i in range(n):
        k = 1 + i % 4
        ids = [f"img{(i * 7 + j) % 150}" for j in range(k)]
        split = "validation" if i % 50 == 0 else None  # a source-fixed split wins over the group hash
        out.append(
            schema.sentence_row(
                schema.sentence_id_for("src", i),
                f"src{i % 3}",
                "sequence" if k > 1 else "single",
                ids,
                group=f"g{i // 3}",
                split=split,
            )
        )
    return out


def _tokens(missing: set[str] = frozenset()) -> list[dict]:
    return [{"image_id": f"img{j}", "tokens": fake_tokens(f"img{j}")} for j in range(150) if f"img{j}" not in missing]


def _options(workers: int) -> PipelineOptions:
    mode = "multi_threading" if workers > 1 else "in_memory"
    return PipelineOptions(
        ["--runner=DirectRunner", f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
    )


def _write(out: str, sentences: list[dict], tokens: list[dict], workers: int = 1, seed: int = 0) -> None:
    with beam.Pipeline(options=_options(workers)) as p:
        rows, failures = (p | "S" >> beam.Create(sentences), p | "T" >> beam.Create(tokens)) | shards.ComposeSentences()
        rows = rows | shards.AssignSplits(0.2, seed)
        _ = rows | shards.WriteShards(out, seed=seed, target_shard_mb=0.1, row_group_mb=0.02)
        _ = failures | beam.Map(lambda f: f["record_id"]) | beam.io.WriteToText(os.path.join(out, "failed"))


def _digest(folder: str) -> dict[str, str]:
    return {
        os.path.basename(f): hashlib.sha256(open(f, "rb").read()).hexdigest()
        for f in sorted(glob.glob(os.path.join(folder, "*-of-*.parquet")))
    }


# --- pure functions ------------------------------------------------------------------------------
def test_compose_concatenates_tokens_in_sentence_order():
    s = schema.sentence_row("s1", "src", "sequence", ["b", "a", "b"], "g")
    parts = [(2, np.full(256, 3)), (0, np.full(256, 1)), (1, np.full(256, 2))]
    [(tag, row)] = list(shards.compose_sentence(s, parts))
    assert tag == "rows" and row["num_images"] == 3 and row["tokens"].dtype == np.uint16
    assert row["tokens"][::256].tolist() == [1, 2, 3] and len(row["tokens"]) == 768


def test_compose_missing_or_bad_tokens_become_failures():
    s = schema.sentence_row("s1", "src", "sequence", ["a", "b"], "g")
    [(tag, row)] = list(shards.compose_sentence(s, [(0, np.zeros(256)), (1, None)]))
    assert tag == FAILURES and row["reason"] == "missing_tokens" and row["record_id"] == "s1" and "b" in row["detail"]
    [(tag, row)] = list(shards.compose_sentence(s, [(0, np.zeros(256)), (1, np.full(256, 8192))]))
    assert tag == FAILURES and row["reason"] == "bad_tokens"
    [(tag, row)] = list(shards.compose_sentence(s, [(0, np.zeros(256)), (1, np.zeros(255))]))
    assert tag == FAILURES and row["reason"] == "bad_tokens"


def test_shard_ranges_keep_the_global_hash_order():
    keys = sorted(shards.shuffle_key(7, f"s{i}") for i in range(2000))
    owners = [shards.shard_of(k, 5) for k in keys]
    assert owners == sorted(owners) and set(owners) == set(range(5))
    assert shards.shard_of(0.9999999999, 3) == 2 and shards.shard_of(0.0, 3) == 0
    assert shards.shuffle_key(7, "s1") != shards.shuffle_key(8, "s1")


def test_split_is_a_function_of_the_group_and_near_the_fraction():
    splits = [schema.split_for(f"g{i}", 0.1, 0) for i in range(5000)]
    assert 0.08 < splits.count("validation") / 5000 < 0.12
    assert schema.split_for("g1", 0.1, 0) == schema.split_for("g1", 0.1, 0)
    assert schema.normalize_split("VAL") == "validation" and schema.normalize_split("") is None
    assert schema.SHARD_NAME.match(schema.shard_name(schema.normalize_split("Test/Hard 2"), 0, 1))


def test_row_group_bounds_cover_every_row_once():
    counts = [256 * (1 + i % 16) for i in range(100)]
    bounds = shards.row_group_bounds(counts, 20_000)
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])) and len(bounds) > 5
    assert shards.row_group_bounds([], 10) == [(0, 0)]


def test_atomic_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.parquet")
    good = shards.shard_table([shards.ShardRow(0.5, "a", "s", "single", 1, np.arange(256, dtype=np.uint16))])
    shards.write_parquet_atomic(path, good, 1e6)
    before = open(path, "rb").read()
    bad = pa.table({"sentence_id": ["x"]})  # wrong schema: the writer raises mid-write
    with pytest.raises(Exception):
        shards.write_parquet_atomic(path, bad, 1e6)
    assert os.listdir(tmp_path) == ["train-00000-of-00001.parquet"]  # no temp file left behind
    assert open(path, "rb").read() == before
    new = str(tmp_path / "validation-00000-of-00001.parquet")
    with pytest.raises(Exception):
        shards.write_parquet_atomic(new, bad, 1e6)
    assert not os.path.exists(new) and len(os.listdir(tmp_path)) == 1


# --- the Beam pipeline ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards"))
    sentences = _sentences(300)
    _write(out, sentences, _tokens(missing={"img5"}))
    return out, sentences


def test_shards_read_back_with_pyarrow_in_the_contract(written):
    out, sentences = written
    files = sorted(glob.glob(os.path.join(out, "*-of-*.parquet")))
    names = [os.path.basename(f) for f in files]
    assert any(n.startswith("train-") for n in names) and any(n.startswith("validation-") for n in names)
    assert all(schema.SHARD_NAME.match(n) for n in names)
    train = [n for n in names if n.startswith("train-")]
    assert len(train) >= 2 and all(n.endswith(f"-of-{len(train):05d}.parquet") for n in train)
    for f in files:
        pf = pq.ParquetFile(f)
        assert pf.schema_arrow == schema.SHARD_SCHEMA
        assert pf.metadata.row_group(0).column(0).compression == "ZSTD"
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.field("tokens").type == pa.list_(pa.uint16())
    by_id = {s["sentence_id"]: s for s in sentences}
    failed = {line.strip() for f in glob.glob(os.path.join(out, "failed*")) for line in open(f)}
    assert failed and all("img5" in by_id[sid]["image_ids"] for sid in failed)
    assert table.num_rows + len(failed) == len(sentences)  # every sentence: a row or a failure
    for row in table.slice(0, 40).to_pylist():
        s = by_id[row["sentence_id"]]
        expected = np.concatenate([fake_tokens(i) for i in s["image_ids"]])
        assert row["num_images"] == len(s["image_ids"]) and np.array_equal(row["tokens"], expected)


def test_rows_are_globally_ordered_by_the_seeded_hash(written):
    out, _ = written
    for split in ("train", "validation"):
        files = sorted(glob.glob(os.path.join(out, f"{split}-*.parquet")))
        ids = [i for f in files for i in pq.read_table(f, columns=["sentence_id"]).column(0).to_pylist()]
        keys = [shards.shuffle_key(0, i) for i in ids]
        assert keys == sorted(keys) and len(ids) > 10


def test_no_group_in_both_splits_and_fixed_splits_kept(written):
    out, sentences = written
    by_id = {s["sentence_id"]: s for s in sentences}
    split_of_group: dict[str, set[str]] = {}
    for f in glob.glob(os.path.join(out, "*-of-*.parquet")):
        split = os.path.basename(f).split("-")[0]
        for sid in pq.read_table(f, columns=["sentence_id"]).column(0).to_pylist():
            split_of_group.setdefault(by_id[sid]["group"], set()).add(split)
            if by_id[sid]["split"]:
                assert split == by_id[sid]["split"]
    # groups of 3 with a fixed split on one member may straddle; every other group is in one split
    free = {s["group"] for s in sentences} - {s["group"] for s in sentences if s["split"]}
    assert all(len(split_of_group[g]) == 1 for g in free if g in split_of_group)


def test_stats_match_the_shards(written):
    out, _ = written
    for f in glob.glob(os.path.join(out, "*-of-*.parquet")):
        stats = files.read_json(os.path.join(out, "stats", os.path.basename(f) + ".json"))
        t = pq.read_table(f)
        assert stats["rows"] == t.num_rows and stats["bytes"] == os.path.getsize(f)
        assert stats["tokens"] == sum(len(x) for x in t.column("tokens").to_pylist())
        assert stats["images"] == sum(t.column("num_images").to_pylist())
        assert sum(s["sentences"] for s in stats["sources"].values()) == t.num_rows


def test_shards_load_with_hf_datasets(written):
    datasets = pytest.importorskip("datasets")
    out, _ = written
    ds = datasets.load_dataset(
        "parquet",
        data_files={"train": os.path.join(out, "train-*.parquet")},
        split="train",
        cache_dir=os.path.join(out, ".hf"),
    )
    assert ds.features["tokens"].feature.dtype == "uint16"
    assert len(ds) == sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob(os.path.join(out, "train-*.parquet")))
    assert len(ds[0]["tokens"]) == 256 * ds[0]["num_images"]


@pytest.mark.slow
def test_rerun_and_other_worker_counts_give_identical_bytes(written, tmp_path):
    out, sentences = written
    first = _digest(out)
    _write(str(tmp_path / "again"), list(reversed(sentences)), _tokens(missing={"img5"}), workers=2)
    assert _digest(str(tmp_path / "again")) == first
    _write(str(tmp_path / "seed1"), sentences, _tokens(missing={"img5"}), seed=1)
    assert _digest(str(tmp_path / "seed1")) != first


def test_empty_planned_shards_are_still_written(tmp_path):
    out = str(tmp_path)
    with beam.Pipeline(options=_options(1)) as p:
        rows = p | beam.Create(
            [
                {
                    "sentence_id": f"s{i}",
                    "source": "x",
                    "kind": "single",
                    "num_images": 1,
                    "tokens": np.zeros(256, np.uint16),
                    "group": "g",
                    "split": "train",
                }
                for i in range(3)
            ]
        )
        _ = rows | shards.WriteShards(out, target_shard_mb=256 * 1.5 / 2**20)  # ~1 sentence per shard -> 3 shards
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "*.parquet")))
    assert files == [f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert sum(pq.ParquetFile(os.path.join(out, f)).metadata.num_rows for f in files) == 3


def test_uvd_shards_stage_from_tables(tmp_path):
    """`uvd shards --input` on tables an earlier stage wrote: shards, failures and a card that adds up."""
    src = tmp_path / "laion"
    sentences = _sentences(40)
    tokens = _tokens()
    failures = [schema.failure_row("u1", "laion", "laion", "http_404")]
    for table, rows in (("sentences", sentences), ("tokens", tokens), ("failures", failures)):
        (src / table).mkdir(parents=True)
        if table == "tokens":
            rows = [{**r, "tokens": r["tokens"].tolist()} for r in rows]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema.TABLE_SCHEMAS[table]), src / table / "part-0.parquet")
    out = str(tmp_path / "out")
    assert (
        shards.run(
            [
                "--input",
                str(src),
                "--output",
                out,
                "--validation_fraction",
                "0.5",
                "--runner=DirectRunner",
                "--direct_running_mode=in_memory",
            ]
        )
        == 0
    )
    files = glob.glob(os.path.join(out, "*-of-*.parquet"))
    written = pq.read_table(glob.glob(os.path.join(out, "failures", "*.parquet"))).to_pylist()
    leaked = [f for f in written if f["reason"] == "image_in_other_split"]  # shared images keep one split
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) + len(leaked) == 40
    card_text = open(os.path.join(out, "README.md")).read()
    assert "| laion | laion | failed | http_404 | 1 |" in card_text
    assert len(written) == 1 + len(leaked) and os.path.exists(os.path.join(out, schema.COMPLETE_MARKER))
