"""`uvd dataset` with every quality check on, over a small source of real pixels with planted defects.

The fake source (like tests/pipelines/fake_sources.py, but with real PNGs) emits: single images and
their JPEG re-encodes (near-duplicates), an image that is also in an evaluation folder, a flat grey
image (one code), a validation pair showing a train image, and two 16-frame sequences, one with a
scene cut. The fake tokenizer's codes are the image's 16x16 thumbnail, so a flat image has 1 code.
"""

from __future__ import annotations

import glob
import os
from types import SimpleNamespace

import apache_beam as beam
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from uvd import schema
from uvd.assembly import dataset
from uvd.assembly import manifest as M
from uvd.core.outputs import IMAGES, SENTENCES, RunSource
from uvd.quality import testset
from uvd.quality.fingerprint import thumbnail
from uvd.tokenize.stage import png_to_pixels
from uvd.transforms.image import encode_png


def _records() -> list[tuple[str, str, list[np.ndarray], str | None]]:
    """(name, kind, images, split) per sentence."""
    photos = testset.sample_photos(6)
    recs = [(f"photo{i}", "single", [p], "train") for i, p in enumerate(photos)]
    recs += [(f"photo{i}_jpeg", "single", [testset.jpeg(photos[i], 40)], "train") for i in (0, 1)]
    recs += [("flat", "single", [np.full((256, 256, 3), 128, np.uint8)], "train")]
    recs += [("val_pair", "annotated", [testset.EDITS["warm"](photos[2]), photos[5][::-1].copy()], "validation")]
    cut, _ = testset.cut_clips(photos[3:5], frames_per_shot=(8, 9), seed=0)
    pan, _ = testset.cut_clips(photos[4:5], frames_per_shot=(16, 17), seed=3)
    recs += [("clip_cut", "sequence", list(cut[:16]), "train"), ("clip_pan", "sequence", list(pan[:16]), "train")]
    return recs


class _Photos:
    def __call__(self, rec):
        name, kind, images, split = rec
        ids = []
        for k, img in enumerate(images):
            ids.append(schema.image_id_for(img))
            yield (
                IMAGES,
                {"image_id": ids[-1], "image": encode_png(img), "source": "photos", "provenance": f"{name}/{k}"},
            )
        yield SENTENCES, schema.sentence_row(schema.sentence_id_for("photos", name), "photos", kind, ids, name, split)


class _Source(beam.PTransform):
    def __init__(self, config: dict) -> None:
        super().__init__()

    def expand(self, pbegin):
        return (
            pbegin
            | beam.Create(_records())
            | RunSource(_Photos(), source="photos", stage="fake_photos", record_id=lambda r: r[0])
        )


class ThumbTokenize(beam.PTransform):
    """Codes = the 16x16 luma thumbnail (a flat image -> one code)."""

    def __init__(self, checkpoint: str = "", batch_size: int = 1, **options) -> None:
        super().__init__()

    def expand(self, images):
        return images | beam.Map(
            lambda r: {
                "image_id": r["image_id"],
                "tokens": thumbnail(png_to_pixels(r["image"]))[0].reshape(-1).astype(np.uint16),
            }
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    evals = tmp / "evals"
    evals.mkdir()
    photo = testset.sample_photos(6)[1]
    cv2.imwrite(str(evals / "eval_0.jpg"), cv2.resize(photo, (300, 300))[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    data = {
        "name": "quality-test",
        "seed": 0,
        "validation_fraction": 0.0,
        "sources": {"photos": {"stage": "laion", "input": str(tmp), "weight": 1}},
        "quality": {
            "near_duplicates": {"policy": "keep_one"},
            "decontaminate": {"eval_sets": ["evals"], "validation": True},
            "learnability": {"enabled": True, "min_distinct_codes": 4},
            "sequences": {"enabled": True, "filter": ["cuts"], "sources": ["photos"]},
        },
    }
    m = M.parse(data, text="quality test", base=tmp)
    out = str(tmp / "out")
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    summary = dataset.build_dataset(
        m, out, options, modules={"photos": SimpleNamespace(source_transform=_Source)}, tokenize=ThumbTokenize
    )
    return out, summary


def _failures(out: str) -> dict[str, dict]:
    rows = pq.read_table(os.path.join(out, "failures")).to_pylist()
    return {r["record_id"]: r for r in rows if r["stage"] == "quality"}


def test_every_defect_is_removed_with_its_reason(built):
    out, _ = built
    sid = {name: schema.sentence_id_for("photos", name) for name, *_ in _records()}
    f = _failures(out)
    by_reason = {}
    for r in f.values():
        by_reason.setdefault(r["reason"], set()).add(r["record_id"])
    # photo1 and its re-encode both match the evaluation image: dropped before the near-dup step
    assert by_reason["eval_contamination"] == {sid["photo1"], sid["photo1_jpeg"]}
    assert by_reason["few_distinct_codes"] == {sid["flat"]}
    assert by_reason["sequence_cuts"] == {sid["clip_cut"]}
    assert by_reason["validation_near_train"] == {sid["val_pair"]}
    (dropped,) = by_reason["near_duplicate"]  # photo0 vs its JPEG: one of the two goes
    assert dropped in {sid["photo0"], sid["photo0_jpeg"]}
    kept = ({sid["photo0"], sid["photo0_jpeg"]} - {dropped}).pop()
    assert f[dropped]["status"] == "skipped" and kept in f[dropped]["detail"]
    assert "image " in f[dropped]["detail"]
    assert all(
        r["status"] == "filtered"
        for r in f.values()
        if r["reason"] != "near_duplicate" and r["reason"] != "validation_near_train"
    )


def test_the_rest_reaches_the_shards_and_everything_is_accounted_for(built):
    out, summary = built
    ids = set()
    for path in glob.glob(os.path.join(out, "*-of-*.parquet")):
        ids |= set(pq.read_table(path, columns=["sentence_id"]).column(0).to_pylist())
    sid = {name: schema.sentence_id_for("photos", name) for name, *_ in _records()}
    assert {sid[n] for n in ("photo2", "photo3", "photo4", "photo5", "clip_pan")} <= ids
    assert ids.isdisjoint(_failures(out)) and len(ids) + len(_failures(out)) == len(_records())


def test_report_table_and_card(built):
    out, _ = built
    report = {r["sentence_id"]: r for r in pq.read_table(os.path.join(out, "quality")).to_pylist()}
    sid = {name: schema.sentence_id_for("photos", name) for name, *_ in _records()}
    assert len(report) == len(_records())
    assert report[sid["clip_cut"]]["cuts"] >= 1 and report[sid["clip_pan"]]["cuts"] == 0
    assert report[sid["flat"]]["min_distinct_codes"] == 1 and report[sid["photo2"]]["frozen"] is None
    assert report[sid["photo1"]]["eval_match"] == "evals:eval_0.jpg"
    card = open(os.path.join(out, "README.md")).read()
    for text in (
        "## Data quality",
        "| near_duplicate | photos | 1 |",
        "### Near-duplicates (policy `keep_one`",
        "| evals | 1 | 2 |",
        "Validation vs train: 1 validation",
        "distinct codes of 256",
        "### Sequences",
        "| photos | 2 | 0 | 0 | 1 |",
    ):
        assert text in card, text
