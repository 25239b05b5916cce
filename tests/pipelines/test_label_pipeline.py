"""`uvd label` through Beam on real photos: every expert, rendering conventions, skip and failure
rows, and the annotations stage's pair and multi-annotation sentence builders fed unchanged."""

from __future__ import annotations

import collections
import glob
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uvd.config import ConfigError
from uvd.schema import IMAGES_SCHEMA
from uvd.sources.label import tiny
from uvd.sources.label.pipeline import LabelSource, run, source_transform
from uvd.transforms.image import encode_png
from uvd.transforms.segmentation import ADE20K_PALETTE

IMAGES = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "images"
PHOTOS = ["astronaut.jpg", "chelsea_cat.jpg", "coffee.jpg", "street_text.jpg"]
LOCAL = ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _table(folder, name):
    parts = [pq.read_table(p) for p in sorted(glob.glob(f"{folder}/{name}/*.parquet"))]
    return pa.concat_tables(parts).to_pylist() if parts else []


def _pixels(row) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(row["image"])).convert("RGB"))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Four photos (in a nested folder), a flat gray image and a broken file, through all four experts."""
    root = tmp_path_factory.mktemp("label")
    photos = root / "photos"
    (photos / "more").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        shutil.copy(IMAGES / name, (photos / "more" if i % 2 else photos) / name)
    (photos / "flat.png").write_bytes(encode_png(np.full((200, 300, 3), 90, np.uint8)))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (photos / "notes.txt").write_text("not an image: every file is an input, so a failure row")
    dpt = tiny.save_tiny_dpt(str(root / "dpt"))
    seg = tiny.save_tiny_segformer(str(root / "seg"))
    normals = tiny.save_tiny_torchscript(str(root / "normals.pt"), 3)
    out = str(root / "out")
    assert (
        run(
            [
                "--expert",
                "depth,segmentation",
                "--expert",
                "normals",
                "--expert",
                "edges",
                "--input",
                str(photos),
                "--output",
                out,
                "--depth_model",
                dpt,
                "--segmentation_model",
                seg,
                "--normals_model",
                normals,
                "--batch_size",
                "4",
                *LOCAL,
            ]
        )
        == 0
    )
    return {name: _table(out, name) for name in ("images", "sentences", "failures")}


@pytest.mark.slow
def test_every_expert_renders_by_the_conventions(labelled):
    rows = [(json.loads(r["provenance"]), r) for r in labelled["images"]]
    by_task = collections.defaultdict(list)
    for prov, row in rows:
        assert row["source"] == "ann/pseudo"
        by_task[prov.get("task", "image")].append(_pixels(row))
    assert {t: len(v) for t, v in by_task.items()} == {
        "image": 5,
        "depth": 5,
        "segmentation": 5,
        "normals": 5,
        "edges": 4,
    }
    for task, images in by_task.items():
        assert all(im.shape == (256, 256, 3) for im in images), task
    for depth in by_task["depth"]:  # gray, min-max normalised to the full 0..255
        assert (depth[..., 0] == depth[..., 1]).all() and (depth[..., 0] == depth[..., 2]).all()
        assert depth.max() == 255
    palette = {tuple(c) for c in ADE20K_PALETTE}
    for seg in by_task["segmentation"]:  # only ADE20K palette colours, never blended
        assert {tuple(c) for c in np.unique(seg.reshape(-1, 3), axis=0)} <= palette
    for n in by_task["normals"]:  # RGB = (n + 1) / 2 * 255 of unit vectors
        vec = n.astype(np.float64) / 255 * 2 - 1
        assert np.allclose(np.linalg.norm(vec, axis=2), 1.0, atol=0.02)
    for e in by_task["edges"]:  # white Canny edges on black
        assert set(np.unique(e)) == {0, 255}


@pytest.mark.slow
def test_skips_and_failures_account_for_every_input(labelled):
    failures = {(f["record_id"], f["reason"]): f for f in labelled["failures"]}
    assert failures[("flat.png", "empty_edges")]["status"] == "skipped"
    assert failures[("broken.jpg", "not_an_image")]["status"] == "failed"
    assert failures[("notes.txt", "not_an_image")]["status"] == "failed"
    assert all(f["stage"] == "label" for f in labelled["failures"])
    records = {json.loads(r["provenance"])["record_id"] for r in labelled["images"]}
    assert records == {"astronaut.jpg", "more/chelsea_cat.jpg", "coffee.jpg", "more/street_text.jpg", "flat.png"}
    assert {rid for rid, _ in failures} - records == {"broken.jpg", "notes.txt"}


@pytest.mark.slow
def test_records_feed_the_pair_and_multi_annotation_builders(labelled):
    prov = {r["image_id"]: json.loads(r["provenance"]) for r in labelled["images"]}
    by_source = collections.defaultdict(list)
    for s in labelled["sentences"]:
        assert set(s["image_ids"]) <= set(prov) and s["kind"] == "annotated"
        by_source[s["source"]].append(s)
    assert sorted(by_source) == ["ann/depth", "ann/edges", "ann/multi", "ann/normals", "ann/segmentation"]
    for task in ("depth", "segmentation", "normals"):  # 5 records -> one sentence of 5 (image, label) pairs
        (sentence,) = by_source[f"ann/{task}"]
        ids = sentence["image_ids"]
        assert len(ids) == 10
        assert all(prov[i]["role"] == "image" for i in ids[0::2])
        assert all(
            prov[i]["task"] == task and prov[i]["record_id"] == prov[j]["record_id"]
            for j, i in zip(ids[0::2], ids[1::2])
        )
    assert len(by_source["ann/edges"][0]["image_ids"]) == 8  # the flat image has no edges pair
    assert len(by_source["ann/multi"]) == 5  # one m-of-(1 + k) sentence per record
    for s in by_source["ann/multi"]:
        first, rest = prov[s["image_ids"][0]], [prov[i] for i in s["image_ids"][1:]]
        assert first["role"] == "image" and all(p["record_id"] == first["record_id"] for p in rest)


@pytest.mark.slow
def test_an_images_table_is_labelled_in_place(tmp_path):
    """Input = a folder holding an images table (e.g. `uvd laion`'s output): 256 px PNG rows."""
    rows = []
    for name in PHOTOS[:3]:
        im = Image.open(IMAGES / name).convert("RGB").resize((256, 256))
        rows.append(
            {"image_id": f"id-{name}", "image": encode_png(np.asarray(im)), "source": "laion", "provenance": "{}"}
        )
    rows.append({"image_id": "id-empty", "image": b"", "source": "laion", "provenance": "{}"})
    (tmp_path / "in" / "images").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=IMAGES_SCHEMA), tmp_path / "in" / "images" / "part-0.parquet")
    out = str(tmp_path / "out")
    assert (
        run(["--expert", "edges", "--input", str(tmp_path / "in"), "--output", out, "--dataset", "laion", *LOCAL]) == 0
    )
    images, sentences, failures = (_table(out, t) for t in ("images", "sentences", "failures"))
    provs = [json.loads(r["provenance"]) for r in images]
    assert {p["record_id"] for p in provs} == {f"id-{n}" for n in PHOTOS[:3]}
    assert {p["source"] for p in provs} == {"laion"} and {r["source"] for r in images} == {"ann/laion"}
    assert [(s["source"], len(s["image_ids"])) for s in sentences] == [("ann/edges", 6)]
    assert [(f["record_id"], f["reason"]) for f in failures] == [("id-empty", "not_an_image")]


def test_config_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="normals_model"):
        source_transform({"input": "x", "experts": ["normals"]})
    with pytest.raises(ConfigError, match="experts"):
        source_transform({"input": "x", "experts": ["depth", "optical_flow"]})
    with pytest.raises(ConfigError, match="precision"):
        source_transform({"input": "x", "precision": "fp8"})
    with pytest.raises(ConfigError, match="depth_model: no such file"):
        source_transform({"input": "x", "depth_model": "/no/such/dpt"})
    t = source_transform({"input": str(IMAGES), "experts": "depth, edges"})
    assert isinstance(t, LabelSource) and t.cfg.experts == ["depth", "edges"]


def test_one_image_preview_without_beam(tmp_path, capsys):
    out = tmp_path / "cat.png"
    assert run(["--image", str(IMAGES / "chelsea_cat.jpg"), "--expert", "edges", "--output", str(out)]) == 0
    strip = np.asarray(Image.open(out))
    assert strip.shape == (256, 512, 3) and set(np.unique(strip[:, 256:])) == {0, 255}  # image | Canny
    flat = tmp_path / "flat.png"
    flat.write_bytes(encode_png(np.full((64, 64, 3), 7, np.uint8)))
    assert run(["--image", str(flat), "--expert", "edges", "--output", str(tmp_path / "f.png")]) == 0
    assert "edges skipped (empty_edges" in capsys.readouterr().out
    assert np.asarray(Image.open(tmp_path / "f.png")).shape == (256, 256, 3)
