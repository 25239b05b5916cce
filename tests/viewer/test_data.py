"""The data the viewer's pages are made of, read back from a hand-made dataset folder."""

from __future__ import annotations

import math

import numpy as np

from tests.viewer.conftest import make_tiny_dataset
from uvd import schema
from uvd.viewer import data


def test_split_comes_from_the_shard_name():
    assert data.split_of("gs://b/out/train-00003-of-00010.parquet") == "train"
    assert data.split_of("/x/validation-00000-of-00001.parquet") == "validation"
    assert data.split_of("/x/part-0.parquet") == "unknown"


def test_open_dataset_finds_every_part_and_names_what_is_missing(tiny, tmp_path):
    ds = data.open_dataset(str(tiny["root"]))
    assert [data.split_of(p) for p in ds.shards] == ["train", "validation"]
    assert len(ds.failure_files) == 1 and ds.summary["name"] == "tiny" and ds.card.startswith("---")
    assert ds.missing == []
    bare = make_tiny_dataset(tmp_path / "bare", with_stats=False, with_failures=False)
    (bare["root"] / "README.md").unlink()
    ds = data.open_dataset(str(bare["root"]))
    assert [m.split(":")[0] for m in ds.missing] == ["failures/", "stats/dataset.json", "README.md"]


def test_counts_per_source_and_split_agree_with_or_without_stats(tiny, tmp_path):
    from_stats = data.per_source_totals(data.source_split_rows(data.open_dataset(str(tiny["root"]))))
    bare = make_tiny_dataset(tmp_path / "bare", with_stats=False)
    from_shards = data.per_source_totals(data.source_split_rows(data.open_dataset(str(bare["root"]))))
    assert from_stats == from_shards
    assert from_shards["a"]["train"] == {"sentences": 3, "images": 19, "tokens": 19 * 256}
    assert list(from_shards) == ["a", "b/x"]


def test_sentence_lengths_histogram_and_its_row_cap(tiny):
    ds = data.open_dataset(str(tiny["root"]))
    hist, read = data.sentence_lengths(ds)
    assert read == 6
    assert hist["a"][0] == 2 and hist["a"][1] == 1 and hist["a"][15] == 1 and sum(hist["a"]) == 4
    assert hist["b/x"][3] == 2
    hist, read = data.sentence_lengths(ds, max_rows=2)
    assert read == 2 and sum(sum(h) for h in hist.values()) == 2


def test_code_usage_counts_every_token_it_reads(tiny):
    ds = data.open_dataset(str(tiny["root"]))
    usage = data.code_usage(ds)
    rows = tiny["train"] + tiny["validation"]
    expected = np.bincount(np.concatenate([r["tokens"] for r in rows]), minlength=schema.CODEBOOK_SIZE)
    assert usage["rows"] == 6 and usage["tokens"] == int(expected.sum())
    assert usage["used"] == int((expected > 0).sum())
    assert usage["ranked"][0] == int(expected.max())
    assert data.code_usage(ds, max_rows=1)["tokens"] == schema.TOKENS_PER_IMAGE  # the first row has one image


def test_usage_summary_perplexity_is_the_number_of_equally_used_codes():
    counts = np.zeros(8192, dtype=np.int64)
    counts[:512] = 10
    u = data.usage_summary(counts, rows=3)
    assert u["used"] == 512 and math.isclose(u["perplexity"], 512, rel_tol=1e-6)
    assert math.isclose(u["top1pct_share"], 81 / 512, abs_tol=1e-4)  # top 1% = 81 codes, 81 of the 512 used
    assert data.usage_summary(np.zeros(8192, dtype=np.int64), 0)["perplexity"] == 0.0


def test_sample_sentences_takes_the_first_per_source_with_their_split(tiny):
    ds = data.open_dataset(str(tiny["root"]))
    got = data.sample_sentences(ds, per_source=2, sources={"a", "b/x"})
    assert [r["sentence_id"] for r in got["a"]] == ["a-0000", "a-0001"]
    assert [r["split"] for r in got["b/x"]] == ["train", "train"]
    got = data.sample_sentences(ds, per_source=10)
    assert [r["split"] for r in got["a"]] == ["train"] * 3 + ["validation"]
    assert np.array_equal(got["a"][2]["tokens"], np.asarray(tiny["train"][2]["tokens"], dtype=np.uint16))


def test_failure_groups_count_every_row_but_list_only_the_first(tiny):
    ds = data.open_dataset(str(tiny["root"]))
    groups = data.failure_groups(ds, rows_per_group=2)
    first = groups[0]
    assert (first["reason"], first["count"], len(first["rows"])) == ("http_404", 3, 2)
    assert sum(g["count"] for g in groups) == len(tiny["failures"])
    facets = dict(data.facet_values(groups)["status"])
    assert facets == {"failed": 5, "skipped": 1, "filtered": 1}


def test_failure_counts_survive_a_missing_table(tmp_path):
    t = make_tiny_dataset(tmp_path / "ds")
    for f in (t["root"] / "failures").iterdir():
        f.unlink()
    groups = data.failure_groups(data.open_dataset(str(t["root"])))
    assert sum(g["count"] for g in groups) == len(t["failures"]) and all(g["rows"] == [] for g in groups)


def test_resolve_input_finds_local_files_urls_and_nothing_else(tiny):
    ds = data.open_dataset(str(tiny["root"]))
    bases = data.input_bases(ds)
    assert bases == [str(tiny["inputs"] / "photos")]
    assert data.resolve_input(str(tiny["photo"]), []) == str(tiny["photo"])
    assert data.resolve_input("file:cat.png#wm", bases) == str(tiny["photo"])
    assert data.resolve_input("https://example.invalid/1.jpg", bases) == "https://example.invalid/1.jpg"
    assert data.resolve_input("file:gone.jpg", bases) is None
    assert data.resolve_input("coco_instances/902", bases) is None
    assert data.resolve_input("ftp://example.com/photo.jpg", bases) is None
