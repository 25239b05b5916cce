"""Hugging Face source without Beam: layouts, shards, rows, column mappings, row values, failures.

The datasets are built here with `datasets.Dataset.from_dict` from the shared sample photos and
written with `save_to_disk` and as Parquet; test_hf_pipeline.py runs the same ones through Beam.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import uvd
from uvd.config import ConfigError
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.sources.hf import mappings, reader
from uvd.sources.hf import pipeline as hf
from uvd.transforms.image import decode_png

PHOTOS = sorted((Path(uvd.__file__).parent / "sample" / "images").glob("*.jpg"))
BROKEN = b"\xff\xd8\xff\xe0 not really a jpeg"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _photo(path: Path) -> dict:
    return {"bytes": path.read_bytes(), "path": path.name}


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.height, im.width


def classification_dataset():
    """17 photos of class "a", 5 of "b", an undecodable image and an unlabelled row (-1)."""
    import datasets

    photos = PHOTOS[:22]
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"]), "uid": datasets.Value("string")}
    )
    return datasets.Dataset.from_dict(
        {
            "img": [_photo(p) for p in photos] + [{"bytes": BROKEN, "path": "broken.jpg"}, _photo(photos[0])],
            "label": [0] * 17 + [1] * 5 + [0, -1],
            "uid": [p.stem for p in photos] + ["broken", "unlabelled"],
        },
        features=features,
    )


def seg_labels(h: int, w: int, seed: int) -> np.ndarray:
    """ADE20K-style ids (0 = ignore, 1..150): a few blocks."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        labels[y : y + h // 2, x : x + w // 2] = rng.integers(1, 151)
    return labels


def segmentation_dataset():
    """4 photos with label maps, one map of the wrong size, one missing map."""
    import datasets

    photos = PHOTOS[:6]
    maps = [{"bytes": _png(seg_labels(*_size(p), i)), "path": None} for i, p in enumerate(photos[:4])]
    maps.append({"bytes": _png(seg_labels(32, 48, 9)), "path": None})
    maps.append(None)
    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image()})
    return datasets.Dataset.from_dict({"image": [_photo(p) for p in photos], "annotation": maps}, features=features)


def depth_map(h: int, w: int) -> np.ndarray:
    """NYU-style uint16 millimetres: 0.5 m at the top to 5 m at the bottom, invalid (0) top rows."""
    mm = np.repeat(np.linspace(500, 5000, h, dtype=np.float64)[:, None], w, axis=1).astype(np.uint16)
    mm[: h // 8] = 0
    return mm


def depth_dataset():
    """3 photos with 16-bit depth PNGs, one with a 3-channel map whose channels differ."""
    import datasets

    photos = PHOTOS[6:10]
    depth = [{"bytes": _png(depth_map(*_size(p))), "path": None} for p in photos[:3]]
    rgb = np.zeros((*_size(photos[3]), 3), np.uint8)
    rgb[..., 1] = 200
    depth.append({"bytes": _png(rgb), "path": None})
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    return datasets.Dataset.from_dict({"image": [_photo(p) for p in photos], "depth_map": depth}, features=features)


def detection_dataset():
    """3 photos with COCO xywh boxes (objects.bbox / objects.category), one box outside its image."""
    import datasets

    photos = PHOTOS[10:14]
    objects = []
    for p in photos[:3]:
        h, w = _size(p)
        objects.append(
            {"bbox": [[w * 0.1, h * 0.1, w * 0.4, h * 0.3], [w * 0.5, h * 0.5, w * 0.3, h * 0.4]], "category": [0, 2]}
        )
    h, w = _size(photos[3])
    objects.append({"bbox": [[w * 0.8, h * 0.8, w * 0.5, h * 0.5]], "category": [1]})
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "objects": {
                "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
                "category": datasets.List(datasets.ClassLabel(names=["person", "car", "dog"])),
            },
        }
    )
    return datasets.Dataset.from_dict(
        {"image_id": [101, 102, 103, 104], "image": [_photo(p) for p in photos], "objects": objects}, features=features
    )


def write(ds, root: Path, fmt: str, split: str = "train") -> str:
    """The dataset as a save_to_disk folder (2 shards) or a Parquet folder (3-row row groups)."""
    if fmt == "disk":
        ds.save_to_disk(str(root / "disk"), num_shards=2)
        return str(root / "disk")
    folder = root / "parquet" / "data"
    folder.mkdir(parents=True)
    ds.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"), batch_size=3)
    return str(root / "parquet")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """mapping -> {"disk": folder, "parquet": folder}."""
    out = {}
    for name, make in [
        ("classification", classification_dataset),
        ("segmentation", segmentation_dataset),
        ("depth", depth_dataset),
        ("detection", detection_dataset),
    ]:
        root = tmp_path_factory.mktemp(name)
        ds = make()
        out[name] = {fmt: write(ds, root, fmt) for fmt in ("disk", "parquet")}
    return out


# --- layouts and shards ----------------------------------------------------------------------------
def test_save_to_disk_lists_one_shard_per_arrow_file(built):
    layout = reader.list_shards(built["classification"]["disk"])
    assert layout.format == "disk" and len(layout.shards) == 2
    assert all(s.format == "arrow" and s.path.endswith(".arrow") for s in layout.shards)
    assert layout.columns == ["img", "label", "uid"]


def test_parquet_lists_one_shard_per_row_group_with_its_split(built):
    layout = reader.list_shards(built["classification"]["parquet"])
    assert layout.format == "parquet"
    assert len(layout.shards) == 8 and {s.part for s in layout.shards} == set(range(8))  # 24 rows / 3
    assert {s.split for s in layout.shards} == {"train"}


def test_disk_and_parquet_give_the_same_rows(built):
    def rows(path: str) -> list[dict]:
        return [
            row
            for shard in reader.list_shards(path).shards
            for _, row in reader.read_shard(shard, ["uid", "label", "img"])
        ]

    disk, parquet = rows(built["classification"]["disk"]), rows(built["classification"]["parquet"])
    assert len(disk) == 24 and disk == parquet
    assert disk[0]["img"]["bytes"] == PHOTOS[0].read_bytes()


def test_dataset_dict_splits_and_a_missing_split(tmp_path):
    import datasets

    ds = detection_dataset()
    datasets.DatasetDict({"train": ds, "validation": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    layout = reader.list_shards(str(tmp_path / "dd"))
    assert sorted(layout.splits) == ["train", "validation"]
    assert sorted(s.shard_id for s in layout.shards) == [
        "train/data-00000-of-00001.arrow",
        "validation/data-00000-of-00001.arrow",
    ]
    assert [s.split for s in reader.list_shards(str(tmp_path / "dd"), split="validation").shards] == ["validation"]
    with pytest.raises(ConfigError, match=r"split: no 'test' split .*\['train', 'validation'\]"):
        reader.list_shards(str(tmp_path / "dd"), split="test")


def test_stream_format_reads_shards_from_a_local_repo_folder(built):
    layout = reader.list_shards(built["detection"]["parquet"], "stream")
    assert layout.format == "stream" and layout.splits == ["train"]
    rows = [row for s in layout.shards for _, row in reader.read_shard(s, ["image_id", "image"])]
    assert [r["image_id"] for r in rows] == [101, 102, 103, 104]
    assert isinstance(rows[0]["image"], dict) and rows[0]["image"]["bytes"]  # not decoded


def fake_hub_cache(root: Path, repo: str, files: dict[str, Path]) -> Path:
    """The layout huggingface_hub keeps: datasets--owner--name/{refs/main, snapshots/<commit>/...}."""
    folder = root / f"datasets--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    for name, src in files.items():
        dest = folder / "snapshots" / ("0" * 40) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
    return root


def test_hub_id_resolves_to_the_cached_snapshot_and_its_row_groups(built, tmp_path):
    parquet = next(Path(built["detection"]["parquet"]).rglob("*.parquet"))
    cache = fake_hub_cache(
        tmp_path / "hub",
        "acme/cppe",
        {"data/train-00000-of-00001.parquet": parquet, "data/test-00000-of-00001.parquet": parquet},
    )
    for input_ in ("acme/cppe", "hf://datasets/acme/cppe"):
        layout = reader.list_shards(input_, split="test", cache_dir=str(cache))
        assert layout.format == "parquet" and {s.split for s in layout.shards} == {"test"}
        assert len(layout.shards) == 2 and "snapshots" in layout.shards[0].path  # 4 rows / 3
    cfg = hf.Config(input="acme/cppe", mapping="detection", cache_dir=str(cache), columns={"id": "image_id"})
    items, process = _items(cfg.input, cfg)
    assert sorted(i["record_id"] for i in items) == [
        f"cppe/{s}/{n}" for s in ("test", "train") for n in (101, 102, 103, 104)
    ]
    assert sum(tag == IMAGES for i in items for tag, _ in process(i)) == 12
    with pytest.raises(ConfigError, match=r"input: hub dataset 'acme/other' .*not available.*huggingface-cli download"):
        reader.list_shards("acme/other", cache_dir=str(cache))


def test_a_path_with_no_dataset_is_a_config_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ConfigError, match="input: .*no save_to_disk dataset, .parquet or .arrow"):
        reader.list_shards(str(tmp_path))
    with pytest.raises(ConfigError, match="input: nothing at .*nor a hub id"):
        reader.list_shards(str(tmp_path / "typo" / "data"))


def test_hub_urls_name_hub_ids():
    assert reader.detect_format("hf://datasets/ILSVRC/imagenet-1k") == "hub"
    assert reader.hub_id("hf://datasets/ILSVRC/imagenet-1k") == "ILSVRC/imagenet-1k"
    assert hf.Config(input="hf://datasets/ILSVRC/imagenet-1k").dataset_name == "imagenet-1k"


def test_manifest_entries_are_checked_against_the_dataset(built, tmp_path):
    from uvd.assembly import manifest

    def entry(options: dict) -> manifest.Manifest:
        source = {"stage": "hf", "input": built["detection"]["disk"], "weight": 1.0, "options": options}
        return manifest.parse({"name": "t", "sources": {"cppe": source}}, base=tmp_path)

    assert manifest.check_stage_options(entry({"mapping": "detection"}))["cppe"] is hf_module()
    with pytest.raises(ConfigError, match=r"sources\.cppe\.options\.columns\.classes: no column 'label'"):
        manifest.check_stage_options(entry({"mapping": "detection", "columns": {"classes": "objects.label"}}))


def hf_module():
    import uvd.sources.hf.pipeline as module

    return module


def test_a_corrupt_shard_is_one_failure_and_the_others_still_read(built, tmp_path):
    import shutil

    folder = tmp_path / "ds"
    shutil.copytree(built["classification"]["disk"], folder)
    second = folder / "data-00001-of-00002.arrow"
    second.write_bytes(second.read_bytes()[: second.stat().st_size // 2])  # truncated mid-batch
    cfg = hf.Config(input=str(folder), columns={"image": "img"}, name="toy")
    items, process = _items(cfg.input, cfg)
    failures = [i for i in items if "failure" in i]
    assert len(items) == 12 + 1 and [f["failure"] for f in failures] == ["unreadable_shard"]
    assert failures[0]["record_id"] == "toy/data-00001-of-00002.arrow"
    [(tag, row)] = list(process(failures[0]))
    assert tag == FAILURES and row["reason"] == "unreadable_shard" and "data-00001" in row["detail"]


def test_a_corrupt_parquet_file_is_listed_and_fails_on_its_worker(built, tmp_path):
    good = next(Path(built["detection"]["parquet"]).rglob("*.parquet"))
    (tmp_path / "train-00000-of-00002.parquet").write_bytes(good.read_bytes())
    (tmp_path / "train-00001-of-00002.parquet").write_bytes(b"PAR1 not really parquet")
    layout = reader.list_shards(str(tmp_path))
    assert [s.part for s in layout.shards] == [0, 1, -1]
    with pytest.raises(Exception):
        list(reader.read_shard(layout.shards[-1], ["image"]))


def test_split_of_file_names_and_folders():
    assert reader.split_of("x/data/validation-00003-of-00010.parquet") == "validation"
    assert reader.split_of("x/test/part.parquet") == "test"
    assert reader.split_of("x/data/part.parquet") is None


def test_column_value_reads_struct_fields_and_lists_of_structs():
    row = {
        "objects": {"bbox": [[1, 2, 3, 4]], "category": [2]},
        "people": [{"box": [1, 1, 2, 2]}, {"box": [3, 3, 4, 4]}],
    }
    assert reader.column_value(row, "objects.category") == [2]
    assert reader.column_value(row, "people.box") == [[1, 1, 2, 2], [3, 3, 4, 4]]
    with pytest.raises(KeyError):
        reader.column_value(row, "objects.area")


# --- the mapping, checked before the pipeline starts -----------------------------------------------
@pytest.mark.parametrize(
    "options, message",
    [
        ({"mapping": "classification"}, r"columns\.image: no column 'image' in the dataset.*img, label, uid"),
        (
            {"mapping": "classification", "columns": {"image": "img", "label": "labels"}},
            r"columns\.label: no column 'labels'.*its columns: img, label, uid",
        ),
        ({"mapping": "classification", "columns": {"image": "label"}}, r"columns\.image: column 'label' is ClassLabel"),
        (
            {"mapping": "classification", "columns": {"image": "img", "caption": "uid"}},
            r"columns\.caption: unknown role .*'group', 'id', 'image', 'label', 'split'",
        ),
        ({"mapping": "keypoints"}, r"mapping: must be one of"),
        ({"mapping": "classification", "columns": {"image": "img"}, "split": "test"}, r"split: no 'test' split"),
    ],
)
def test_wrong_mapping_fails_fast_naming_the_field(built, options, message):
    with pytest.raises(ConfigError, match=message):
        hf.source_transform({"input": built["classification"]["parquet"], **options})


def test_dotted_column_that_is_not_there(built):
    with pytest.raises(ConfigError, match=r"columns\.boxes: no column 'box' in column 'objects'; available: bbox, cat"):
        hf.source_transform(
            {"input": built["detection"]["disk"], "mapping": "detection", "columns": {"boxes": "objects.box"}}
        )


def test_builtin_defaults_fit_the_common_layouts(built):
    for mapping in ("segmentation", "depth", "detection"):
        cfg = hf.Config(input=built[mapping]["disk"], mapping=mapping)
        cfg.validate()
        assert cfg.resolve()[1] == mappings.MAPPINGS[mapping]


# --- row values ------------------------------------------------------------------------------------
def test_label_names_and_unlabelled_rows():
    assert mappings.label_name(1, "label", ["a", "b"]) == "b"
    assert mappings.label_name("tabby", "label", None) == "tabby"
    with pytest.raises(mappings.RowError) as info:
        mappings.label_name(-1, "label", ["a", "b"])
    assert (info.value.reason, info.value.status) == ("no_label", "skipped")
    with pytest.raises(mappings.RowError, match="outside the 2 class names"):
        mappings.label_name(5, "label", ["a", "b"])


def test_dense_maps_keep_values_and_reject_wrong_shapes():
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(mappings.dense_array({"bytes": _png(ids), "path": None}, "seg"), ids)
    mm = np.array([[0, 1000], [65000, 2]], np.uint16)
    assert np.array_equal(mappings.dense_array({"bytes": _png(mm)}, "depth"), mm)  # 16-bit kept
    assert mappings.dense_array([[1.5, 2.0]], "depth").dtype == np.float64
    gray3 = np.repeat(ids[..., None], 3, axis=2)
    assert np.array_equal(mappings.dense_array(_png(gray3), "seg"), ids)  # equal channels
    for bad, reason in [
        (np.dstack([ids, ids + 1, ids]), "bad_map_shape"),
        ([1, 2, 3], "bad_map_shape"),
        ([[1, 2], [3]], "bad_map_shape"),
        (b"garbage", "undecodable_map"),
        (None, "missing_value"),
    ]:
        with pytest.raises(mappings.RowError) as info:
            mappings.dense_array(_png(bad) if isinstance(bad, np.ndarray) else bad, "seg")
        assert info.value.reason == reason and "column 'seg'" in info.value.message


def test_video_paths():
    assert mappings.video_path("a/b.mp4", "v", "/data") == "/data/a/b.mp4"
    assert mappings.video_path({"path": "gs://x/b.mp4", "bytes": None}, "v", "/data") == "gs://x/b.mp4"
    cases = [({"path": None, "bytes": b"\x00"}, "embedded_video"), (None, "missing_value"), ("", "missing_value")]
    for cell, reason in cases:
        with pytest.raises(mappings.RowError) as info:
            mappings.video_path(cell, "v", None)
        assert info.value.reason == reason and "column 'v'" in info.value.message


def test_segmentation_and_depth_conventions():
    ade = np.array([[0, 1], [150, 2]], np.uint8)
    assert mappings.segmentation_labels(ade.tolist(), "a", True).tolist() == [[255, 0], [149, 1]]
    assert mappings.segmentation_labels(ade.tolist(), "a", False).tolist() == [[0, 1], [150, 2]]
    assert np.allclose(mappings.depth_metres(np.array([[1500, 0]], np.uint16).tolist(), "d", 1000.0), [[1.5, 0.0]])
    assert np.allclose(mappings.depth_metres([[2.5, 0.5]], "d", 1000.0), [[2.5, 0.5]])  # floats: metres


def test_boxes_convert_and_check():
    xyxy, cls = mappings.boxes_xyxy([[10, 20, 30, 40]], [3], ("b", "c"), "xywh", 100, 100)
    assert xyxy.tolist() == [[10, 20, 40, 60]] and cls.tolist() == [3]
    assert mappings.boxes_xyxy([[10, 20, 30, 40]], [3], ("b", "c"), "xyxy", 100, 100)[0].tolist() == [[10, 20, 30, 40]]
    cases = [
        ([[0, 0, 10, 10]], [1, 2], "bad_boxes", "c"),
        ([[0, 0, -5, 10]], [1], "bad_boxes", "b"),
        ([[90, 90, 20, 20]], [1], "box_outside_image", "b"),
        ([[1, 2, 3]], [1], "bad_boxes", "b"),
        ([], [], "no_annotations", "b"),
    ]
    for boxes, classes, reason, column in cases:
        with pytest.raises(mappings.RowError) as info:
            mappings.boxes_xyxy(boxes, classes, ("b", "c"), "xywh", 100, 100)
        assert (info.value.reason, info.value.column) == (reason, column)


# --- one row through the stage's code, no Beam -----------------------------------------------------
def _items(path: str, cfg: hf.Config) -> tuple[list[dict], hf.ProcessRow]:
    layout, roles = cfg.resolve()
    read = hf.ReadRows(cfg, roles)
    names = mappings.class_names(layout.features, roles["label"]) if cfg.mapping == "classification" else None
    return [item for shard in layout.shards for item in read(shard)], hf.ProcessRow(cfg, roles, names)


def test_classification_rows_become_class_images_or_named_failures(built):
    cfg = hf.Config(input=built["classification"]["disk"], columns={"image": "img", "id": "uid"}, name="toy")
    items, process = _items(cfg.input, cfg)
    out = [row for item in items for row in process(item)]
    images = [r for tag, r in out if tag == IMAGES]
    failures = {r["record_id"]: r for tag, r in out if tag == FAILURES}
    assert len(images) == 22 and len(out) == 24  # one output per row
    classes = [json.loads(r["provenance"])["class"] for r in images]
    assert classes.count("toy/a") == 17 and classes.count("toy/b") == 5
    assert decode_png(images[0]["image"]).shape == (256, 256, 3)
    assert (failures["toy/broken"]["reason"], failures["toy/broken"]["status"]) == ("not_an_image", "failed")
    assert "column 'img'" in failures["toy/broken"]["detail"]
    assert (failures["toy/unlabelled"]["reason"], failures["toy/unlabelled"]["status"]) == ("no_label", "skipped")


def test_segmentation_rows_become_pairs_and_bad_maps_name_their_column(built):
    cfg = hf.Config(input=built["segmentation"]["parquet"], mapping="segmentation", name="ade")
    items, process = _items(cfg.input, cfg)
    out = [list(process(item)) for item in items]
    good = [rows for rows in out if rows[0][0] == IMAGES]
    assert len(good) == 4 and all(len(rows) == 2 for rows in good)  # image + rendered map
    prov = json.loads(good[0][1][1]["provenance"])
    assert prov["task"] == "segmentation" and prov["pair"] == [good[0][0][1]["image_id"], good[0][1][1]["image_id"]]
    assert prov["split"] == "train"
    fails = [rows[0][1] for rows in out if rows[0][0] == FAILURES]
    assert sorted(f["reason"] for f in fails) == ["annotation_size_mismatch", "missing_value"]
    assert all("column 'annotation'" in f["detail"] for f in fails)


def test_a_row_missing_a_column_is_a_failure_naming_it(built):
    cfg = hf.Config(input=built["depth"]["disk"], mapping="depth")
    items, process = _items(cfg.input, cfg)
    item = {**items[0], "row": {k: v for k, v in items[0]["row"].items() if k != "depth_map"}}
    [(tag, row)] = list(process(item))
    assert tag == FAILURES and row["reason"] == "missing_column" and "depth_map" in row["detail"]


def test_depth_renders_near_bright_and_invalid_black(built):
    cfg = hf.Config(input=built["depth"]["disk"], mapping="depth")
    items, process = _items(cfg.input, cfg)
    rows = list(process(items[0]))
    depth = decode_png(rows[1][1]["image"])[..., 0].astype(int)
    assert depth[40:, 128].tolist() == sorted(depth[40:, 128].tolist(), reverse=True)  # far = darker
    assert depth[250, 128] < depth[40, 128]
    assert depth[:30].max() == 0  # invalid rows
    bad = list(process(items[3]))
    assert bad[0][1]["reason"] == "bad_map_shape" and "column 'depth_map'" in bad[0][1]["detail"]


def test_detection_boxes_are_drawn_and_ids_come_from_the_id_column(built):
    cfg = hf.Config(input=built["detection"]["disk"], mapping="detection", columns={"id": "image_id"}, name="det")
    items, process = _items(cfg.input, cfg)
    assert [i["record_id"] for i in items] == ["det/101", "det/102", "det/103", "det/104"]
    rows = list(process(items[0]))
    image, drawn = decode_png(rows[0][1]["image"]), decode_png(rows[1][1]["image"])
    changed = (drawn != image).any(axis=2)
    assert 0 < changed.mean() < 0.3 and (drawn[~changed] == image[~changed]).all()  # outlines over the image
    black = hf.Config(input=cfg.input, mapping="detection", columns={"id": "image_id"}, name="det", box_canvas="black")
    drawn = decode_png(list(_items(black.input, black)[1](items[0]))[1][1]["image"])
    assert drawn.any() and (drawn == 0).all(axis=2).mean() > 0.5  # or on black
    [(tag, failure)] = list(process(items[3]))
    assert failure["reason"] == "box_outside_image" and "column 'objects.bbox'" in failure["detail"]


def nyu_like_dataset():
    """Image + depth (mm PNG) + ADE20K label map + normals PNG per row; the second row's labels are too small."""
    import datasets

    photos = PHOTOS[14:16]
    rows = {"image": [], "depth_map": [], "seg": [], "normals": []}
    for i, p in enumerate(photos):
        h, w = _size(p)
        normals = np.zeros((h, w, 3), np.uint8)
        normals[...] = (128, 128, 255)  # (n + 1) / 2 of (0, 0, 1)
        rows["image"].append(_photo(p))
        rows["depth_map"].append({"bytes": _png(depth_map(h, w)), "path": None})
        rows["seg"].append({"bytes": _png(seg_labels(h, w, i) if i == 0 else seg_labels(8, 8, i)), "path": None})
        rows["normals"].append({"bytes": _png(normals), "path": None})
    features = datasets.Features({k: datasets.Image() for k in rows})
    return datasets.Dataset.from_dict(rows, features=features)


def test_extra_annotations_make_multi_annotation_records(tmp_path):
    path = write(nyu_like_dataset(), tmp_path, "disk")
    extras = {
        "segmentation": {"column": "seg", "type": "segmentation"},
        "normals": {"column": "normals", "type": "normals"},
    }
    cfg = hf.Config(input=path, mapping="depth", annotations=extras, name="nyu")
    items, process = _items(path, cfg)
    first = list(process(items[0]))
    tasks = sorted(json.loads(r["provenance"]).get("task", "-") for tag, r in first if tag == IMAGES)
    assert tasks == ["-", "depth", "normals", "segmentation"]
    [multi] = [r for tag, r in first if tag == SENTENCES]
    assert multi["source"] == "ann/multi" and 2 <= len(multi["image_ids"]) <= 4
    normals = next(r for tag, r in first if tag == IMAGES and json.loads(r["provenance"]).get("task") == "normals")
    assert np.abs(decode_png(normals["image"])[128, 128].astype(int) - [128, 128, 255]).max() <= 1
    [(tag, failure)] = list(process(items[1]))
    assert failure["reason"] == "annotation_size_mismatch" and "column 'seg'" in failure["detail"]


@pytest.mark.parametrize(
    "annotations, message",
    [
        ({"seg": {"column": "nope", "type": "segmentation"}}, r"annotations\.seg\.column: no column 'nope'"),
        ({"seg": {"column": "seg", "type": "keypoints"}}, r"annotations\.seg\.type: must be one of"),
        ({"seg": {"column": "seg", "type": "segmentation", "palette": 1}}, r"annotations\.seg\.palette: unknown key"),
        ({"depth": {"column": "seg", "type": "depth"}}, r"annotations\.depth: the mapping already makes task"),
    ],
)
def test_extra_annotations_are_checked_before_work(tmp_path, annotations, message):
    path = write(nyu_like_dataset(), tmp_path, "disk")
    with pytest.raises(ConfigError, match=message):
        hf.source_transform({"input": path, "mapping": "depth", "annotations": annotations})


def test_glob_inputs_name_shards_by_path_not_file_name(tmp_path):
    """`*/data.parquet` over a/ and b/: two shards, two sets of record ids (a file name alone collides)."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        pq.write_table(pa.table({"label": [1, 2]}), tmp_path / folder / "data.parquet")
    layout = reader.list_shards(str(tmp_path / "*" / "data.parquet"))
    assert sorted(s.shard_id for s in layout.shards) == ["a/data.parquet:rg0", "b/data.parquet:rg0"]
    assert reader.list_shards(str(tmp_path / "a" / "data.parquet")).shards[0].shard_id == "data.parquet:rg0"
    assert sorted(s.shard_id for s in reader.list_shards(str(tmp_path)).shards) == [
        "a/data.parquet:rg0",
        "b/data.parquet:rg0",
    ]
