"""Adapters on the committed sample and on small bad inputs: every item is a record or a reason."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uvd.annotated.records import RecordError
from uvd.annotated.render import rasterise_masks, render_record
from uvd.config import ConfigError, from_dict
from uvd.sources.annotations import coco, dense, pairs, synthetic_pairs, video
from uvd.sources.annotations.pipeline import Config, ProcessItem
from uvd.transforms.image import apply_geometry, compute_geometry
from uvd.transforms.segmentation import ADE20K_PALETTE, IGNORE_INDEX, INSTANCE_PALETTE

SAMPLE = str(Path(__file__).resolve().parents[2] / "uvd" / "sample" / "annotations")


def _outcome(module, item):
    if "failure" in item:
        return item["failure"]
    try:
        module.load_record(item)
        return "ok"
    except RecordError as exc:
        return exc.reason


def test_coco_instances_sample_records_and_bad_annotations():
    opts = coco.CocoOptions(
        annotations="coco/instances.json",
        images="../images",
        name="c",
        tasks=["detection", "segmentation", "instances"],
    )
    items = list(coco.list_items(opts, SAMPLE))
    outcome = {it["file"].rsplit("/", 1)[-1] + str(it["record_id"]): _outcome(coco, it) for it in items}
    reasons = sorted(v for v in outcome.values() if v != "ok")
    assert reasons == ["box_outside_image", "missing_file", "negative_box_size", "unknown_category"]
    assert sum(v == "ok" for v in outcome.values()) == 6


def test_coco_polygon_mask_paints_the_class_colour_where_the_cup_is():
    opts = coco.CocoOptions(
        annotations="coco/instances.json", images="../images", name="c", tasks=["segmentation", "detection"]
    )
    item = next(
        it
        for it in coco.list_items(opts, SAMPLE)
        if it.get("file", "").endswith("coffee.jpg") and int(it["record_id"].split("/")[1]) < 900
    )
    rec = coco.load_record(item)
    seg = render_record(rec).annotations["segmentation"]
    cup = ADE20K_PALETTE[item["categories"]["47"]].tolist()
    s = 256 / 400  # coffee.jpg is 600x400: crop x 100..499
    assert seg[round(150 * s), round((300 - 100) * s)].tolist() == cup  # inside the traced cup
    assert seg[round(380 * s), round((120 - 100) * s)].tolist() == [0, 0, 0]  # table corner: no object
    boxes = rec["annotations"]["detection"]["data"]["boxes"]
    assert boxes.shape == (2, 4) and (boxes[:, 2] > boxes[:, 0]).all()


def test_coco_instances_get_one_bright_colour_per_object():
    opts = coco.CocoOptions(annotations="coco/instances.json", images="../images", name="c", tasks=["instances"])
    item = next(it for it in coco.list_items(opts, SAMPLE) if it.get("file", "").endswith("astronaut.jpg"))
    out = render_record(coco.load_record(item)).annotations["instances"]
    colours = {tuple(c) for c in out.reshape(-1, 3)} - {(0, 0, 0)}
    assert colours == {tuple(INSTANCE_PALETTE[0]), tuple(INSTANCE_PALETTE[1])}  # person, shuttle


def test_polygons_rasterised_at_256_match_full_resolution_masks():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    h, w = 900, 1200
    angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
    poly = np.stack([600 + 300 * np.cos(angles), 450 + 250 * np.sin(angles)], 1).ravel().tolist()
    full = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], h, w)))
    geom = compute_geometry(h, w, 256, "crop")
    reference = apply_geometry(full, geom, nearest=True).astype(bool)
    ours = rasterise_masks([[poly]], np.array([1]), geom, 0) == 1
    assert (ours != reference).mean() < 0.01 and ours.sum() > 5000


def test_coco_keypoints_and_compressed_rle(tmp_path):
    from pycocotools import mask as mask_utils

    img = np.zeros((40, 60, 3), np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    m = np.zeros((40, 60), np.uint8, order="F")
    m[10:20, 30:50] = 1
    rle = mask_utils.encode(m)
    rle["counts"] = rle["counts"].decode()
    kp = [0.0] * 51
    kp[0:3] = [35, 12, 2]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "person", "keypoints": ["nose"] * 17}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [30, 10, 20, 10],
                "area": 200,
                "iscrowd": 1,
                "segmentation": rle,
                "keypoints": kp,
                "num_keypoints": 1,
            },
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]},
        ],
    }
    (tmp_path / "k.json").write_text(json.dumps(data))
    items = list(
        coco.list_items(
            coco.CocoOptions(annotations="k.json", images=".", name="k", tasks=["pose", "segmentation", "instances"]),
            str(tmp_path),
        )
    )
    assert items[0]["failure"] == "unknown_image"
    rec = coco.load_record(items[1])
    out = render_record(rec).annotations  # 40x60 -> crop x 10..49 -> x 6.4
    seg = (out["segmentation"] == ADE20K_PALETTE[0]).all(axis=2)
    assert seg[round(15 * 6.4), round((40 - 10) * 6.4)] and not seg[round(5 * 6.4)].any()
    assert "instances" not in out  # a crowd region is no instance: no target
    assert render_record(rec).skipped["instances"].reason == "empty_instances"
    assert rec["annotations"]["pose"]["data"].shape == (1, 17, 3)


def test_coco_keypoint_outside_image_and_no_people(tmp_path):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a.png")
    kp = [0.0] * 51
    kp[0:3] = [95, 12, 2]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 40, "width": 60},
            {"id": 2, "file_name": "a.png", "height": 40, "width": 60},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["x"] * 17}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "keypoints": kp, "num_keypoints": 1}
        ],
    }
    (tmp_path / "k.json").write_text(json.dumps(data))
    items = list(coco.list_items(coco.CocoOptions(annotations="k.json", images="."), str(tmp_path)))
    assert [_outcome(coco, it) for it in items] == ["keypoint_outside_image", "no_annotations"]


def test_dense_sample_decodes_every_task_and_reports_unmatched():
    opts = from_dict(
        dense.DenseOptions,
        {
            "images": "dense/images",
            "annotations": {
                "seg": {"dir": "dense/seg", "type": "segmentation"},
                "depth": {"dir": "dense/depth", "type": "depth"},
                "normals": {"dir": "dense/normals", "type": "normals"},
                "edges": {"dir": "dense/edges", "type": "edges"},
            },
        },
    )
    items = list(dense.list_items(opts, SAMPLE))
    assert [it["failure"] for it in items if "failure" in it] == ["unmatched_annotation"]
    rec = dense.load_record(next(it for it in items if it.get("record_id") == "dense/cameraman"))
    anns = rec["annotations"]
    assert set(anns) == {"seg", "depth", "normals", "edges"}
    assert anns["seg"]["data"][0, 0] == IGNORE_INDEX and anns["seg"]["data"][450, 480] == 9  # grass (ADE 10)
    assert anns["depth"]["data"][10, 400] == 0.0 and 1.0 < anns["depth"]["data"][500, 450] < 3.0  # sky invalid, metres
    assert np.allclose(np.linalg.norm(anns["normals"]["data"][400, 400]), 1.0, atol=0.02)


def test_dense_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="annotations.seg.type"):
        from_dict(dense.DenseOptions, {"images": "x", "annotations": {"seg": {"dir": "s", "type": "labels"}}})


def test_pairs_match_by_stem_and_report_both_sides():
    items = list(pairs.list_items(pairs.PairsOptions(task="deraining", root="pairs/deraining"), SAMPLE))
    failures = sorted((it["failure"], it["record_id"]) for it in items if "failure" in it)
    assert failures == [("unmatched_input", "deraining/input/astronaut_no_target")]
    ok = [it for it in items if "failure" not in it]
    assert len(ok) == 5 and all(it["file"].rsplit("/", 1)[-1] == it["target"].rsplit("/", 1)[-1] for it in ok)
    rec = pairs.load_record(ok[0])
    assert rec["annotations"]["deraining"]["type"] == "image"
    stereo = list(pairs.list_items(pairs.PairsOptions(task="stereo", root="pairs/stereo"), SAMPLE))
    assert [it["failure"] for it in stereo if "failure" in it] == ["unmatched_target"]


def test_synthetic_pairs_limit_and_tasks():
    opts = synthetic_pairs.SyntheticOptions(images="../images", limit=3, tasks=["colorization", "edges"])
    listed = list(synthetic_pairs.list_items(opts, SAMPLE))
    assert [(it["record_id"], it["failure"]) for it in listed if "failure" in it] == [
        ("synthetic/SOURCES.md", "unsupported_format")
    ]  # the photos' licence file
    items = [it for it in listed if "failure" not in it]
    assert len(items) == 3
    rec = synthetic_pairs.load_record(items[0])
    assert {t: a["type"] for t, a in rec["annotations"].items()} == {"colorization": "synthetic", "edges": "edges"}


def test_video_clip_frames_and_masks_share_geometry():
    items = list(video.list_items(video.VideoOptions(frames="video/JPEGImages", masks="video/Annotations"), SAMPLE))
    assert len(items) == 1 and len(items[0]["frames"]) == 10
    frames, masks = video.render_clip(items[0])
    assert len(frames) == len(masks) == 10 and frames[0].shape == masks[0].shape == (256, 256, 3)
    rows = list(ProcessItem(Config(input=SAMPLE, adapters=[{"type": "video", "frames": "x", "masks": "y"}]))(items[0]))
    sentences = [r for tag, r in rows if tag == "sentences"]
    assert [len(s["image_ids"]) for s in sentences] == [16, 16, 4, 4]


def test_process_item_turns_bad_input_into_failure_rows():
    cfg = Config(input=SAMPLE, adapters=[{"type": "pairs", "task": "t", "root": "r"}])
    rows = list(
        ProcessItem(cfg)(
            {
                "adapter": "pairs",
                "dataset": "p",
                "task": "t",
                "record_id": "p/x",
                "file": SAMPLE + "/nope.jpg",
                "target": SAMPLE + "/nope2.jpg",
            }
        )
    )
    assert [(tag, r["reason"], r["status"]) for tag, r in rows] == [("failures", "missing_file", "failed")]
    too_short = {
        "adapter": "video",
        "dataset": "v",
        "record_id": "v/c",
        "clip": "c",
        "task": "vos",
        "frames": [],
        "masks": [],
        "window": 8,
    }
    rows = list(ProcessItem(cfg)(too_short))
    assert [(r["reason"], r["status"]) for _, r in rows] == [("too_short", "skipped")]


def test_a_malformed_or_missing_coco_json_is_one_failure_item(tmp_path):
    from uvd.sources.annotations.pipeline import list_items

    (tmp_path / "broken.json").write_text("{not json")
    broken = list(list_items(coco.CocoOptions(annotations="broken.json", images=".", name="b"), str(tmp_path)))
    missing = list(list_items(coco.CocoOptions(annotations="nope.json", images=".", name="m"), str(tmp_path)))
    assert [(it["record_id"], it["failure"]) for it in broken] == [("b", "bad_annotation_file")]
    assert [(it["record_id"], it["failure"]) for it in missing] == [("m", "missing_file")]


# --- COCO: empty masks, every defect, tasks an image cannot serve (issue 15) --------------------------
def _coco_items(tmp_path, images, anns, categories, tasks):
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "a.png")
    data = {
        "images": [{"id": i, "file_name": "a.png", "height": 40, "width": 60} for i in images],
        "categories": categories,
        "annotations": anns,
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    opts = coco.CocoOptions(annotations="c.json", images=".", name="c", tasks=tasks)
    return list(coco.list_items(opts, str(tmp_path)))


def _rows(item):
    from uvd.core.outputs import FAILURES, IMAGES

    out = list(ProcessItem(Config(input="x", multi_annotation=False))(item))
    images = [json.loads(r["provenance"]).get("task") for t, r in out if t == IMAGES]
    return images, [(r["status"], r["reason"]) for t, r in out if t == FAILURES]


def test_box_only_degenerate_and_empty_masks_never_become_segmentation_targets(tmp_path):
    from pycocotools import mask as mask_utils

    empty_rle = mask_utils.encode(np.zeros((40, 60), np.uint8, order="F"))
    empty_rle["counts"] = empty_rle["counts"].decode()
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "segmentation": []},
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "bbox": [30, 5, 20, 20],
            "area": 400,
            "segmentation": [[30, 5, 50, 5]],
        },  # 2 points: no polygon
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 20, 10, 10], "area": 100, "segmentation": empty_rle},
    ]  # no foreground
    (item,) = _coco_items(tmp_path, [1], anns, [{"id": 1, "name": "cup"}], ["detection", "segmentation", "instances"])
    tasks, failures = _rows(item)
    assert tasks == [None, "detection"]  # the image and its boxes only
    assert sorted(failures) == sorted(
        [("skipped", "no_mask")] * 2 + [("skipped", "empty_segmentation"), ("skipped", "empty_instances")]
    )


def test_every_defect_of_an_image_is_reported(tmp_path):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 9, "bbox": [10, 10, 20, 20]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, -3, 20]},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [50, 30, 40, 40]},
    ]
    (item,) = _coco_items(tmp_path, [1], anns, [{"id": 1, "name": "cup"}], ["detection"])
    tasks, failures = _rows(item)
    assert tasks == [] and sorted(failures) == [
        ("failed", "box_outside_image"),
        ("failed", "negative_box_size"),
        ("failed", "unknown_category"),
    ]


def test_an_image_without_keypoints_keeps_its_other_tasks(tmp_path):
    kp = [0.0] * 51
    kp[0:3] = [20, 20, 2]
    kp[3:6] = [30, 25, 2]
    anns = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [10, 10, 30, 25],
            "area": 750,
            "segmentation": [[10, 10, 40, 10, 40, 35, 10, 35]],
            "keypoints": [0.0] * 51,
            "num_keypoints": 0,
        },
        {
            "id": 2,
            "image_id": 2,
            "category_id": 1,
            "bbox": [10, 10, 30, 25],
            "area": 750,
            "segmentation": [[10, 10, 40, 10, 40, 35, 10, 35]],
            "keypoints": kp,
            "num_keypoints": 2,
        },
    ]
    cats = [{"id": 1, "name": "person", "keypoints": ["j"] * 17}]
    first, second = _coco_items(tmp_path, [1, 2], anns, cats, ["detection", "segmentation", "pose"])
    tasks, failures = _rows(first)
    assert tasks == [None, "detection", "segmentation"] and failures == [("skipped", "no_keypoints")]
    tasks, failures = _rows(second)
    assert tasks == [None, "detection", "segmentation", "pose"] and failures == []
    # Only a pose task, and no keypoints: the image itself is the skipped row.
    (only_pose,) = _coco_items(tmp_path, [1], anns[:1], cats, ["pose"])
    assert _rows(only_pose) == ([], [("skipped", "no_keypoints")])


def test_a_stem_names_one_file_and_every_file_is_an_input(tmp_path):
    """`a.jpg` beside `a.png` would keep one silently: both fail; a stray file is a skipped row."""
    for side in ("input", "target"):
        (tmp_path / "p" / side).mkdir(parents=True)
        for name in ("a.jpg", "b.jpg"):
            Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(tmp_path / "p" / side / name)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "p" / "input" / "a.png")
    (tmp_path / "p" / "target" / "notes.txt").write_text("not an image")
    items = list(pairs.list_items(pairs.PairsOptions(task="t", root="p"), str(tmp_path)))
    failures = sorted((it["record_id"], it["failure"], it.get("status", "failed")) for it in items if "failure" in it)
    assert failures == [
        ("t/input/a.jpg", "ambiguous_stem", "failed"),
        ("t/input/a.png", "ambiguous_stem", "failed"),
        ("t/target/a", "unmatched_target", "failed"),
        ("t/target/notes.txt", "unsupported_format", "skipped"),
    ]
    assert [it["record_id"] for it in items if "failure" not in it] == ["t/b"]
    stray = next(it for it in items if it.get("failure") == "unsupported_format")
    rows = list(ProcessItem(Config(input="x"))(stray))
    assert [(r["status"], r["reason"]) for _, r in rows] == [("skipped", "unsupported_format")]


def test_a_broken_dense_map_costs_only_its_own_task(tmp_path):
    for sub in ("images", "seg", "depth", "normals"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "images" / "a.png")
    seg = np.zeros((40, 60), np.uint8)
    seg[10:30, 10:50] = 5
    Image.fromarray(seg).save(tmp_path / "seg" / "a.png")
    (tmp_path / "depth" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(tmp_path / "normals" / "a.png")  # wrong size
    opts = from_dict(
        dense.DenseOptions,
        {
            "images": "images",
            "annotations": {
                "seg": {"dir": "seg", "type": "segmentation"},
                "depth": {"dir": "depth", "type": "depth"},
                "normals": {"dir": "normals", "type": "normals"},
            },
        },
    )
    (item,) = list(dense.list_items(opts, str(tmp_path)))
    tasks, failures = _rows(item)
    assert tasks == [None, "seg"]  # the image keeps its good task...
    assert sorted(failures) == [("failed", "annotation_size_mismatch"), ("failed", "bad_annotation_file")]
