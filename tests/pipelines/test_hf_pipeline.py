"""`uvd hf` through Beam: each built-in mapping end to end, every row accounted for, counters.

Datasets come from test_hf.py's builders (real sample photos), written with save_to_disk, as
Parquet, and read through the streaming (load_dataset) path from a local folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from tests.pipelines.test_hf import (
    classification_dataset,
    depth_dataset,
    detection_dataset,
    segmentation_dataset,
    write,
)
from uvd.sources.hf import pipeline as hf
from uvd.transforms.image import decode_png

pytestmark = pytest.mark.slow
LOCAL = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _read(out: Path, table: str) -> list[dict]:
    parts = sorted((out / table).glob("part*.parquet"))
    return pa.concat_tables(pq.read_table(p) for p in parts).to_pylist() if parts else []


def _run(tmp_path: Path, *flags: str) -> tuple[list[dict], list[dict], list[dict]]:
    out = tmp_path / "out"
    assert hf.run([*flags, "--output", str(out), *LOCAL]) == 0
    return _read(out, "images"), _read(out, "sentences"), _read(out, "failures")


def test_classification_from_save_to_disk(tmp_path):
    path = write(classification_dataset(), tmp_path, "disk")
    images, sentences, failures = _run(tmp_path, "--input", path, "--columns", "image=img", "id=uid", "--name", "toy")
    class_of = {r["image_id"]: json.loads(r["provenance"])["class"] for r in images}
    assert len(images) == 22 and Counter(class_of.values()) == {"toy/a": 17, "toy/b": 5}
    # 17 images of "a": two 16-image sentences (the second filled), all of one class
    assert [s["group"] for s in sentences] == ["toy/a", "toy/a"]
    for s in sentences:
        assert len(set(s["image_ids"])) == 16 and {class_of[i] for i in s["image_ids"]} == {"toy/a"}
        assert s["source"] == "imagenet_class" and s["kind"] == "sequence"
    assert Counter((f["reason"], f["status"]) for f in failures) == {
        ("class_too_small", "skipped"): 5,
        ("not_an_image", "failed"): 1,
        ("no_label", "skipped"): 1,
    }
    broken = next(f for f in failures if f["reason"] == "not_an_image")
    assert broken["record_id"] == "toy/broken" and "column 'img'" in broken["detail"]
    # every row of the dataset is an image row or a failure row of the row stage
    assert len(images) + sum(f["stage"] == "hf" for f in failures) == 24


def test_segmentation_from_parquet_with_named_split(tmp_path):
    path = write(segmentation_dataset(), tmp_path, "parquet", split="validation")
    images, sentences, failures = _run(
        tmp_path, "--input", path, "--mapping", "segmentation", "--name", "ade", "--split", "validation"
    )
    assert len(images) == 8  # 4 photos + 4 rendered maps
    [sentence] = sentences
    assert sentence["source"] == "ann/segmentation" and sentence["kind"] == "annotated"
    assert len(sentence["image_ids"]) == 8 and sentence["split"] == "validation"
    by_id = {r["image_id"]: r for r in images}
    for i in range(0, 8, 2):  # (photo, map) pairs of one record
        photo, seg = (json.loads(by_id[x]["provenance"]) for x in sentence["image_ids"][i : i + 2])
        assert photo["role"] == "image" and seg["role"] == "annotation" and photo["record_id"] == seg["record_id"]
    assert sorted(f["reason"] for f in failures) == ["annotation_size_mismatch", "missing_value"]
    assert all("column 'annotation'" in f["detail"] for f in failures)


def test_depth_through_the_streaming_path(tmp_path):
    path = write(depth_dataset(), tmp_path, "parquet")
    images, sentences, failures = _run(
        tmp_path, "--input", path, "--format", "stream", "--mapping", "depth", "--name", "nyu"
    )
    assert len(images) == 6 and [s["source"] for s in sentences] == ["ann/depth"]
    depth_rows = [r for r in images if json.loads(r["provenance"]).get("task") == "depth"]
    for row in depth_rows:
        pixels = decode_png(row["image"])
        assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.max() == 255  # gray, min-max
    assert [(f["reason"], "column 'depth_map'" in f["detail"]) for f in failures] == [("bad_map_shape", True)]


def test_detection_through_source_transform_counts_its_rows(tmp_path):
    """What a manifest entry does: source_transform(options + input) applied to the pipeline root."""
    path = write(detection_dataset(), tmp_path, "disk")
    transform = hf.source_transform(
        {"input": path, "mapping": "detection", "columns": {"id": "image_id"}, "name": "cppe"}
    )

    def one_sentence(rows):
        assert [(r["source"], len(r["image_ids"])) for r in rows] == [("ann/detection", 6)]

    def one_failure(rows):
        assert [(r["record_id"], r["reason"]) for r in rows] == [("cppe/104", "box_outside_image")]

    p = beam.Pipeline(options=PipelineOptions(LOCAL))
    out = p | "HF" >> transform
    assert_that(out.sentences, one_sentence, label="CheckSentences")
    assert_that(out.failures, one_failure, label="CheckFailures")
    result = p.run()
    result.wait_until_finish()
    metrics = {
        m.key.metric.name: m.committed
        for m in result.metrics().query(MetricsFilter())["counters"]
        if m.key.metric.namespace == "uvd.hf"
    }
    assert metrics["inputs"] == 4 and metrics["failures"] == 1 and metrics["images"] == 6


def test_video_paths_through_the_video_stage(tmp_path):
    import shutil

    import datasets

    videos = Path(hf.__file__).resolve().parents[2] / "sample" / "videos"
    ds = datasets.Dataset.from_dict(
        {
            "clip": [str(videos / "china_pan.mp4"), "coffee_zoom.mp4", None, "missing.mp4"],
            "name": ["china", "coffee", "none", "missing"],
        }
    )
    path = write(ds, tmp_path, "parquet")
    shutil.copy(videos / "coffee_zoom.mp4", Path(path) / "coffee_zoom.mp4")  # relative to the input folder
    images, sentences, failures = _run(
        tmp_path,
        "--input",
        path,
        "--mapping",
        "video",
        "--columns",
        "video=clip",
        "id=name",
        "--name",
        "vids",
        "--strides",
        "10",
    )
    assert sorted(s["group"] for s in sentences) == ["vids/train/china", "vids/train/coffee"]
    assert all(s["source"] == "video" and len(s["image_ids"]) == 16 for s in sentences)
    assert len(images) == 32
    by_reason = {f["reason"]: f for f in failures}
    assert set(by_reason) == {"missing_value", "unreadable_video"}
    missing = by_reason["missing_value"]
    assert "column 'clip'" in missing["detail"] and missing["record_id"] == "vids/train/none"
    assert by_reason["unreadable_video"]["record_id"] == "vids/train/missing"
