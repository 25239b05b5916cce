"""The whole annotations stage through Beam on the committed sample: every task, counts reconcile."""

import collections
import glob
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from uvd.config import ConfigError, from_dict
from uvd.sources.annotations.pipeline import Config, list_items, run, source_transform

SAMPLE = str(Path(__file__).resolve().parents[2] / "uvd" / "sample" / "annotations")


def _table(folder, name):
    parts = [pq.read_table(p) for p in sorted(glob.glob(f"{folder}/{name}/*.parquet"))]
    return pa.concat_tables(parts).to_pylist() if parts else []


@pytest.mark.slow
def test_sample_end_to_end(tmp_path):
    out = str(tmp_path / "ann")
    assert (
        run(
            [
                "--input",
                SAMPLE,
                "--output",
                out,
                "--runner=DirectRunner",
                "--direct_running_mode=in_memory",
                "--direct_num_workers=1",
            ]
        )
        == 0
    )
    images, sentences, failures = (_table(out, t) for t in ("images", "sentences", "failures"))

    sources = collections.Counter(s["source"] for s in sentences)
    for task in (
        "detection",
        "segmentation",
        "instances",
        "pose",
        "depth",
        "normals",
        "edges",
        "deraining",
        "stereo",
        "style_transfer",
        "colorization",
        "inpainting",
        "denoising",
        "low_light",
        "multi",
    ):
        assert sources[f"ann/{task}"] >= 1, task
    assert sources["ann_video/video_segmentation"] == 4
    kinds = {s["source"]: s["kind"] for s in sentences}
    assert kinds["ann/depth"] == "annotated" and kinds["ann_video/video_segmentation"] == "annotated_video"

    by_id = {r["image_id"] for r in images}
    assert len(by_id) == len(images)  # deduplicated
    for s in sentences:
        assert set(s["image_ids"]) <= by_id  # every image is in the table
        assert 1 <= len(s["image_ids"]) <= 16
    # The sample manifest keeps every annotated sentence (rate 1: stereo and style_transfer, one
    # sentence each, reach the shards) because its weight is this count: update it with the sample.
    manifest = yaml.safe_load((Path(SAMPLE).parents[2] / "manifests" / "sample.yaml").read_text())
    assert manifest["sources"]["annotated_images"]["weight"] == len(sentences) == 35
    full = [s for s in sentences if s["source"] == "ann/colorization"]
    assert [len(s["image_ids"]) for s in full] == [16, 16]  # 16 photos -> 2 x 8 pairs

    reasons = collections.Counter(f["reason"] for f in failures)
    assert reasons == {
        "box_outside_image": 1,
        "negative_box_size": 1,
        "unknown_category": 1,
        "missing_file": 1,
        "unmatched_annotation": 1,
        "unmatched_input": 1,
        "unmatched_target": 1,
        "empty_edges": 1,  # Canny finds no edge in the smooth retina photo
        "unsupported_format": 1,
    }  # images/SOURCES.md: every file of a folder is an input
    skipped = sorted((f["record_id"], f["reason"]) for f in failures if f["status"] == "skipped")
    assert skipped == [("photos/SOURCES.md", "unsupported_format"), ("photos/microaneurysms", "empty_edges")]
    assert not any(
        json.loads(r["provenance"]).get("task") == "edges"
        and json.loads(r["provenance"])["record_id"] == "photos/microaneurysms"
        for r in images
    )  # no black target...
    assert any(json.loads(r["provenance"])["record_id"] == "photos/microaneurysms" for r in images)  # ...the rest stays

    # Reconcile: every listed item is a rendered record (in image provenance) or a failure row.
    cfg = from_dict(Config, {"input": SAMPLE})
    item_ids = {it["record_id"] for opts in cfg.adapter_options() for it in list_items(opts, SAMPLE)}
    rendered = {json.loads(r["provenance"])["record_id"] for r in images}
    failed = {f["record_id"] for f in failures if f["status"] == "failed" or f["reason"] == "unsupported_format"}
    assert item_ids == rendered | failed and not rendered & failed


def test_config_is_checked_before_any_work():
    with pytest.raises(ConfigError, match=r"adapters\[0\].type"):
        source_transform({"input": SAMPLE, "adapters": [{"type": "kitti"}]})
    with pytest.raises(ConfigError, match="resize"):
        source_transform({"input": SAMPLE, "resize": "stretch"})
    with pytest.raises(ConfigError, match=r"adapters\[0\].limit"):
        source_transform({"input": SAMPLE, "adapters": [{"type": "synthetic", "images": "x", "limit": -1}]})
    assert source_transform({"input": SAMPLE}).cfg.adapter_options()[0].type == "coco"


def test_pair_sentences_pool_by_dataset_and_task_and_count_leftovers():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from uvd.annotated.pooling import PairSentences

    def row(dataset, task, i):
        prov = {
            "role": "annotation",
            "dataset": dataset,
            "task": task,
            "record_id": f"{dataset}/{i}",
            "pair": [f"{dataset}-img{i}", f"{dataset}-{task}{i}"],
            "split": None,
            "bucket": 0,
        }
        return {"image_id": f"{dataset}-{task}{i}", "image": b"", "source": "x", "provenance": json.dumps(prov)}

    rows = [row("a", "depth", i) for i in range(10)] + [row("b", "depth", i) for i in range(8)]
    rows += [{"image_id": "plain", "image": b"", "source": "laion", "provenance": "{}"}]  # not a pair: ignored
    with TestPipeline(runner="DirectRunner") as p:
        sentences, failures = p | beam.Create(rows) | PairSentences(seed=0, pairs_per_sentence=8, min_pairs=3)
        assert_that(
            sentences
            | "Shape"
            >> beam.Map(lambda s: (s["source"], s["group"], len(s["image_ids"]), s["image_ids"][0].split("-")[0])),
            equal_to([("ann/depth", "ann/a/0", 16, "a"), ("ann/depth", "ann/b/0", 16, "b")]),
            label="S",
        )
        assert_that(
            failures | "Reasons" >> beam.Map(lambda f: (f["reason"], f["status"], f["record_id"][:2])),
            equal_to([("too_few_pairs", "skipped", "a/")] * 2),
            label="F",
        )
