"""Issue 15 points 1, 5, 8, 9, 10 at the assembly step: each test failed before its fix."""

from __future__ import annotations

import glob
import os
import random

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from uvd import schema
from uvd.assembly import card, publish, shards
from uvd.core import files

OPTIONS = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


# --- point 9: a killed build does not look finished --------------------------------------------
def _fake_build(out: str) -> None:
    os.makedirs(os.path.join(out, "stats"), exist_ok=True)
    table = shards.shard_table([shards.ShardRow(0.5, "s0", "laion", "single", 1, np.zeros(256, np.uint16))])
    shards.write_parquet_atomic(os.path.join(out, "train-00000-of-00001.parquet"), table, 1e6)
    files.write_json(os.path.join(out, "stats", "train-00000-of-00001.parquet.json"), {"rows": 1})


def test_readers_refuse_a_folder_without_the_completion_marker(tmp_path):
    from uvd.assembly import preview
    from uvd.model import data

    out = str(tmp_path / "killed")
    _fake_build(out)  # shards and stats under final names, then the process died: no marker
    with pytest.raises(FileNotFoundError, match=schema.COMPLETE_MARKER):
        data.resolve_shards(out, "train")
    with pytest.raises(FileNotFoundError, match=schema.COMPLETE_MARKER):
        preview.preview(out, str(tmp_path / "p.png"))
    record = publish.complete(out)
    assert data.resolve_shards(out, "train") == [os.path.join(out, "train-00000-of-00001.parquet")]
    assert set(record["files"]) == {"train-00000-of-00001.parquet", "stats/train-00000-of-00001.parquet.json"}


def test_a_new_build_drops_the_old_marker_first_and_cleans_stale_temp_files(tmp_path):
    out = str(tmp_path / "out")
    _fake_build(out)
    publish.complete(out)
    os.makedirs(os.path.join(out, "failures"))
    stale = [
        os.path.join(out, ".tmp-train-00000-of-00001.parquet-dead"),
        os.path.join(out, "stats", ".tmp-x.json-1"),
        os.path.join(out, "failures", "part-00001-of-00002.parquet"),
    ]
    for path in stale:
        open(path, "wb").write(b"left by a killed run")
    publish.begin(out)
    assert not publish.is_complete(out) and not any(os.path.exists(p) for p in stale)
    assert os.path.exists(os.path.join(out, "train-00000-of-00001.parquet"))  # replaced by the build itself


# --- point 8: failures, stats and card byte-identical across runs and machines ---------------------
def test_failure_details_lose_addresses_clock_times_and_machine_paths():
    roots = card.default_roots("/data/manifests")
    uvd_root = next(iter(roots))
    detail = (
        f"cannot identify image file <_io.BytesIO object at 0x7fb69e627600> | [mov,mp4 @ 0x55d0c0ffee00] "
        f"at 2026-12-02 06:17:06.123 read {uvd_root}uvd/sample/x.jpg and /data/manifests/videos/a.mp4"
    )
    row = card.stable_row(schema.failure_row(f"{uvd_root}uvd/sample/x.jpg", "s", "st", "r", detail), roots)
    assert row["record_id"] == "uvd/sample/x.jpg"
    assert "0x7f" not in row["detail"] and "0x55" not in row["detail"] and "06:17" not in row["detail"]
    assert "uvd/sample/x.jpg" in row["detail"] and uvd_root not in row["detail"] and " videos/a.mp4" in row["detail"]


def _write_failures(rows: list[dict], out: str, workers: int) -> list[bytes]:
    opts = PipelineOptions(OPTIONS + [f"--direct_num_workers={workers}"])
    with beam.Pipeline(options=opts) as p:
        _ = p | beam.Create(rows, reshuffle=True) | card.WriteFailures(out)
    return [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(out, "failures", "*.parquet")))]


def test_failures_table_is_the_same_bytes_whatever_the_input_order(tmp_path):
    rows = [
        schema.failure_row(f"rec{i}", "laion", "laion", f"reason{i % 3}", f"object at 0x{i + 10**7:x}")
        for i in range(300)
    ]
    first = _write_failures(rows, str(tmp_path / "a"), 1)
    random.Random(1).shuffle(rows)
    second = _write_failures(rows, str(tmp_path / "b"), 2)
    assert len(first) == 1 and first == second
    table = pq.read_table(glob.glob(str(tmp_path / "a" / "failures" / "*.parquet"))[0]).to_pylist()
    assert [r["record_id"] for r in table] == sorted(r["record_id"] for r in table)


def test_card_names_the_tokenizer_without_this_machines_path():
    from uvd.assembly.dataset import checkpoint_name, resolve_checkpoint

    resolved = resolve_checkpoint("default")
    name = checkpoint_name("default", resolved, "/somewhere/manifests")
    assert os.path.isabs(resolved) and resolved not in name and name.startswith("default (uvd/tokenize/")
    assert checkpoint_name("/ckpt/run7/vqgan", "/ckpt/run7/vqgan", "/ckpt") == "run7/vqgan"
    assert checkpoint_name("/elsewhere/vqgan", "/elsewhere/vqgan", "/ckpt") == "vqgan"


# --- points 1 and 5: conflicting sentence ids, one split per image --------------------------------
def _sentence(sid, source, ids, group, split=None, entry=None):
    return {
        **schema.sentence_row(sid, source, "single" if len(ids) == 1 else "sequence", ids, group, split),
        "entry": entry or source,
    }


def _tokens(ids):
    return [{"image_id": i, "tokens": np.full(256, n, np.uint16)} for n, i in enumerate(sorted(set(ids)))]


_SEEN: dict[str, list] = {}  # module level: what the in-process runner's pickled lambdas write to


def _keep(name: str, values: list) -> None:
    _SEEN[name] = values


def _compose_split(sentences, fraction, seed):
    ids = [i for s in sentences for i in s["image_ids"]]
    _SEEN.clear()
    with beam.Pipeline(options=PipelineOptions(OPTIONS)) as p:
        rows, failures = (
            p | "S" >> beam.Create(sentences),
            p | "T" >> beam.Create(_tokens(ids)),
        ) | shards.ComposeSentences()
        rows = rows | shards.AssignSplits(fraction, seed)
        kept, split_failures = rows | shards.KeepImagesInOneSplit()
        _ = (
            kept
            | "Rows" >> beam.Map(lambda r: (r["sentence_id"], r["split"], tuple(r["image_ids"])))
            | "RowList" >> beam.combiners.ToList()
            | "KeepRows" >> beam.Map(lambda v: _keep("rows", v))
        )
        _ = (
            (failures, split_failures)
            | beam.Flatten()
            | "FailureList" >> beam.combiners.ToList()
            | "KeepFailures" >> beam.Map(lambda v: _keep("failures", v))
        )
    return _SEEN.get("rows", []), _SEEN.get("failures", [])


def test_two_different_inputs_claiming_one_sentence_id_are_dead_lettered_never_merged():
    a = _sentence("same-id", "objaverse", ["a/model-view0"], "a/model", entry="meshes")
    b = _sentence("same-id", "objaverse", ["b/model-view0"], "b/model", entry="meshes")
    twin = _sentence("twin", "laion", ["img"], "img")
    rows, failures = _compose_split([a, b, twin, dict(twin, entry="other")], 0.0, 0)
    assert [r[0] for r in rows] == ["twin"]  # an identical duplicate keeps one
    conflict = [f for f in failures if f["reason"] == "conflicting_sentence_id"]
    assert len(conflict) == 2 and all("a/model" in f["detail"] and "b/model" in f["detail"] for f in conflict)
    assert [f["reason"] for f in failures if f["record_id"] == "twin"] == ["duplicate_sentence_id"]


def test_no_image_in_two_splits_when_sources_share_images():
    # LAION-like singles grouped by image, annotation-like pairs grouped by pool: the same photos
    photos = [f"photo{i}" for i in range(60)]
    sentences = [_sentence(f"single{i}", "laion", [p], p) for i, p in enumerate(photos)]
    sentences += [
        _sentence(
            f"pair{i}", "ann/segmentation", [photos[2 * i], f"mask{i}", photos[2 * i + 2], f"mask{i}b"], f"pool{i // 4}"
        )
        for i in range(20)
    ]
    for seed in (0, 1, 2):
        rows, failures = _compose_split(sentences, 0.3, seed)
        split_of: dict[str, set] = {}
        for _, split, ids in rows:
            for i in ids:
                split_of.setdefault(i, set()).add(split)
        assert all(len(s) == 1 for s in split_of.values()), seed
        assert {s for v in split_of.values() for s in v} == {"train", "validation"}
        dropped = {f["record_id"] for f in failures if f["reason"] == "image_in_other_split"}
        assert dropped and len(rows) + len(dropped) == 80
        # without the fix, the group hash alone put some photo in both splits
        leaked = {}
        for s in sentences:
            for i in s["image_ids"]:
                leaked.setdefault(i, set()).add(schema.split_for(s["group"], 0.3, seed))
        assert any(len(v) == 2 for v in leaked.values())


# --- point 10: a requested split that ends empty is said ---------------------------------------
def test_a_requested_split_that_ends_empty_is_warned_about():
    assert card.empty_split_warnings({"train": {"sentences": 5}}, ["validation"])
    assert not card.empty_split_warnings({"train": {"sentences": 5}, "validation": {"sentences": 1}}, ["validation"])
    text = card.render_card({"shards": [], "warnings": card.empty_split_warnings({}, ["validation"])})
    assert "## Warnings" in text and "'validation' was requested but has no sentences" in text
