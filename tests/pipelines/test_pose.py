"""Pose pseudo-labels: person inputs and selection, checkpoint safety, the missing-extra message
(all without mmpose), then the MMPose model and the stage through Beam on real photos (marked
`pose`: skipped without the extra, run by `make test-pose`)."""

from __future__ import annotations

import glob
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from uvd.annotated.records import RecordError
from uvd.core import files
from uvd.sources.pose import model as pose_model
from uvd.sources.pose import people as pose_people

IMAGES = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "images"
PEOPLE = ("astronaut.jpg", "cameraman.jpg", "grace_hopper.jpg", "luispedro.jpg")


# --- inputs and selection (numpy only) ---------------------------------------------------------
def test_coco_person_boxes_drop_crowds_and_small_boxes_largest_first():
    anns = [
        {"bbox": [10, 10, 20, 30]},
        {"bbox": [0, 0, 100, 50]},
        {"bbox": [5, 5, 200, 200], "iscrowd": 1},
        {"bbox": [1, 1, 8, 100]},
        {"bbox": [3, 4, 50, 60]},
    ]
    boxes = pose_people.coco_person_boxes(anns, min_box_size=16, max_people=2)
    np.testing.assert_allclose(boxes, [[0, 0, 100, 50], [3, 4, 53, 64]])  # xyxy, area order, capped at 2
    assert pose_people.coco_person_boxes([], 16).shape == (0, 4)


def test_coco_items_keep_only_person_boxes_and_every_image(tmp_path):
    data = {
        "images": [{"id": 2, "file_name": "b.jpg"}, {"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40]},
            {"image_id": 1, "category_id": 18, "bbox": [0, 0, 99, 99]},
            {"image_id": 2, "category_id": 18, "bbox": [0, 0, 50, 50]},
        ],
    }
    items = list(pose_people.coco_items(json.dumps(data).encode(), str(tmp_path), "coco", split="val"))
    assert [it["record_id"] for it in items] == ["coco/1", "coco/2"]
    assert items[0]["boxes"] == [[1.0, 2.0, 31.0, 42.0]] and items[0]["split"] == "val"
    assert items[1]["boxes"] == []  # the dog-only image: reported as no_person later
    assert items[0]["file"].endswith("a.jpg")


def test_folder_items_list_images_recursively(tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copy(IMAGES / "astronaut.jpg", tmp_path / "sub" / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    items = list(pose_people.folder_items(str(tmp_path), "people"))
    assert [it["record_id"] for it in items] == ["people/notes.txt", "people/sub/a.jpg"]  # every file an input
    assert items[1]["boxes"] is None
    with pytest.raises(RecordError) as err:  # what _Decode turns into the failure row
        files.read_image(items[0]["file"])
    assert err.value.reason == "not_an_image"
    np.testing.assert_array_equal(pose_people.whole_image_box(480, 640), [[0, 0, 640, 480]])


def test_select_people_zeroes_outside_joints_and_applies_thresholds():
    confident = np.zeros((17, 3), np.float32)
    confident[:, :2] = 50.0
    confident[:, 2] = 0.9
    confident[0] = [120.0, 50.0, 0.9]  # x beyond the 100-px-wide image
    confident[1] = [np.nan, 3.0, 0.9]
    weak = confident.copy()
    weak[:, 2] = 0.1
    few = confident.copy()
    few[3:, 2] = 0.0  # mean 0.9*2/17 after zeroing: dropped
    kept = pose_people.select_people(np.stack([confident, weak, few]), 80, 100, 0.3, 0.3, 4)
    assert kept.shape == (1, 17, 3)
    assert kept[0, 0, 2] == 0 and kept[0, 1, 2] == 0 and np.isfinite(kept).all()
    assert kept[0, 0, 0] == 120.0  # coordinates kept, only the score says "not here"
    assert (kept[0, 2:, 2] == np.float32(0.9)).all()
    assert pose_people.select_people(np.zeros((0, 17, 3)), 80, 100).shape == (0, 17, 3)
    loose = pose_people.select_people(np.stack([weak]), 80, 100, 0.0, 0.0, 0)
    assert loose.shape == (1, 17, 3)


# --- checkpoints and configs (torch only) ------------------------------------------------------
class _Opaque:
    """Stands for any pickled object a checkpoint should not be trusted to construct."""


def test_read_checkpoint_allows_numpy_meta_and_refuses_other_objects(tmp_path):
    net = torch.nn.Linear(3, 2)
    ok = tmp_path / "ok.pth"
    torch.save(
        {
            "state_dict": net.state_dict(),
            "meta": {
                "dataset_meta": {"sigmas": np.linspace(0, 1, 17).astype(np.float32), "flip_indices": np.arange(17)}
            },
        },
        ok,
    )
    ckpt = pose_model.read_checkpoint(str(ok))
    np.testing.assert_array_equal(ckpt["meta"]["dataset_meta"]["flip_indices"], np.arange(17))
    assert torch.equal(ckpt["state_dict"]["weight"], net.weight)

    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": net.state_dict(), "meta": _Opaque()}, bad)
    with pytest.raises(ValueError, match="trust"):
        pose_model.read_checkpoint(str(bad))
    assert isinstance(pose_model.read_checkpoint(str(bad), trust=True)["meta"], _Opaque)


def test_load_weights_rejects_a_checkpoint_missing_weights():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    other = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    pose_model.load_weights(net, {"state_dict": {f"module.{k}": v for k, v in other.state_dict().items()}})
    assert torch.equal(net[1].weight, other[1].weight)
    with pytest.raises(ValueError, match="lacks 2"):
        pose_model.load_weights(
            net, {"state_dict": {k: v for k, v in other.state_dict().items() if k.startswith("0.")}}
        )


def test_checkpoint_path_and_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        pose_model.checkpoint_path(str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="rtmpose-t"):
        pose_model.resolve_config("no-such-model")
    assert pose_model.resolve_config("rtmpose-t").endswith("rtmpose_t_coco_256x192.py")


# --- without the extra -------------------------------------------------------------------------
def test_missing_extra_gives_the_install_hint_not_a_trace(monkeypatch, capsys):
    from uvd import cli

    for name in ("mmpose", "mmcv", "mmengine"):
        monkeypatch.setitem(sys.modules, name, None)  # `import mmpose` now fails as if not installed
    monkeypatch.delitem(sys.modules, "uvd.sources.pose.pipeline", raising=False)
    with pytest.raises(pose_model.MissingExtraError, match=r"install uvd\[pose\]: make setup-pose"):
        import uvd.sources.pose.pipeline  # noqa: F401
    monkeypatch.delitem(sys.modules, "uvd.sources.pose.pipeline", raising=False)
    assert cli.main(["pose", "--input", "x", "--output", "y"]) == 2
    err = capsys.readouterr().err
    assert "install uvd[pose]: make setup-pose" in err and "Traceback" not in err


# --- with the extra: the model and the stage ---------------------------------------------------
def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(IMAGES / name).convert("RGB"))


@pytest.fixture(scope="module")
def random_rtmpose():
    pose_model.import_mmpose()
    torch.manual_seed(0)
    return pose_model.load_pose_model("rtmpose-t")


@pytest.mark.pose
def test_keypoints_shape_range_and_batching(random_rtmpose):
    a, b = _photo("astronaut.jpg"), _photo("cameraman.jpg")
    boxes = [pose_people.whole_image_box(*a.shape[:2]), np.array([[20, 10, 300, 400], [100, 50, 200, 150]], np.float32)]
    batched = pose_model.predict_keypoints(random_rtmpose, [a, b], boxes, max_crops=64)
    one_by_one = pose_model.predict_keypoints(random_rtmpose, [a, b], boxes, max_crops=1)
    assert [k.shape for k in batched] == [(1, 17, 3), (2, 17, 3)]
    for kp, ref in zip(batched, one_by_one):
        assert kp.dtype == np.float32 and np.isfinite(kp).all()
        np.testing.assert_allclose(kp, ref, atol=1e-3)  # a crop's result does not depend on its batch
    # Joints land inside their box's crop (padded 1.25x, widened to the 192:256 input), in image pixels.
    for kp, (x0, y0, x1, y1) in zip(batched[1], boxes[1]):
        w, h = 1.25 * (x1 - x0), 1.25 * (y1 - y0)
        w, h = max(w, h * 0.75), max(h, w / 0.75)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert (np.abs(kp[:, 0] - cx) <= w / 2 + 1).all() and (np.abs(kp[:, 1] - cy) <= h / 2 + 1).all()
    assert pose_model.predict_keypoints(random_rtmpose, [a], [np.zeros((0, 4))])[0].shape == (0, 17, 3)


@pytest.mark.pose
def test_checkpoint_round_trip_into_the_stock_mmpose_config(random_rtmpose, tmp_path):
    """Our config's weights load into MMPose's own RTMPose-t config and give the same keypoints,
    so the released RTMPose-t checkpoint fits ours."""
    ckpt = tmp_path / "rtmpose-t.pth"
    torch.save(
        {
            "state_dict": random_rtmpose.model.state_dict(),
            "meta": {"dataset_meta": {k: v for k, v in random_rtmpose.dataset_meta.items()}},
        },
        ckpt,
    )
    stock = pose_model.load_pose_model(
        "mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py", str(ckpt)
    )
    assert set(stock.model.state_dict()) == set(random_rtmpose.model.state_dict())
    image = _photo("grace_hopper.jpg")
    box = [pose_people.whole_image_box(*image.shape[:2])]
    np.testing.assert_allclose(
        pose_model.predict_keypoints(stock, [image], box)[0],
        pose_model.predict_keypoints(random_rtmpose, [image], box)[0],
        atol=1e-3,
    )


@pytest.mark.pose
def test_keep_people_skips_images_without_a_confident_person(random_rtmpose):
    from apache_beam.ml.inference.base import PredictionResult

    from uvd.sources.pose import pipeline as pose

    image = _photo("luispedro.jpg")
    boxes = pose_people.whole_image_box(*image.shape[:2])
    kp = pose_model.predict_keypoints(random_rtmpose, [image], [boxes])[0]
    example = {"record_id": "t/luispedro.jpg", "file": "luispedro.jpg", "image": image, "boxes": boxes}
    strict = pose.Config(input="x", person_threshold=1e6)
    [(tag, row)] = list(pose.KeepPeople(strict)(PredictionResult(example, kp)))
    assert (tag, row["status"], row["reason"]) == ("failures", "skipped", "no_person")
    loose = pose.Config(input="x", person_threshold=0, keypoint_threshold=0, min_keypoints=0)
    tags = [t for t, _ in pose.KeepPeople(loose)(PredictionResult(example, kp))]
    assert tags == ["images", "images"]  # the photo and its skeleton


def _table(folder: Path, name: str) -> list[dict]:
    parts = [pq.read_table(p) for p in sorted(glob.glob(f"{folder}/{name}/*.parquet"))]
    return pa.concat_tables(parts).to_pylist() if parts else []


@pytest.mark.pose
@pytest.mark.slow
def test_stage_through_beam_on_real_photos(tmp_path):
    from uvd.annotated.records import annotation, make_record
    from uvd.annotated.render import render_record
    from uvd.sources.pose import pipeline as pose
    from uvd.transforms.image import decode_png

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PEOPLE:
        shutil.copy(IMAGES / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    # Random weights: thresholds 0 keep every prediction (structure and plumbing are under test).
    assert (
        pose.run(
            [
                "--input",
                str(photos),
                "--output",
                str(out),
                "--person_threshold",
                "0",
                "--keypoint_threshold",
                "0",
                "--min_keypoints",
                "0",
                "--runner=DirectRunner",
            ]
        )
        == 0
    )
    images, sentences, failures = (_table(out, t) for t in ("images", "sentences", "failures"))

    assert [(f["record_id"], f["status"]) for f in failures] == [("mmpose/broken.jpg", "failed")]
    by_id = {r["image_id"]: r for r in images}
    skeletons = [r for r in images if json.loads(r["provenance"])["role"] == "annotation"]
    assert sorted(json.loads(r["provenance"])["record_id"] for r in skeletons) == sorted(f"mmpose/{n}" for n in PEOPLE)
    for row in skeletons:
        prov = json.loads(row["provenance"])
        photo = _photo(Path(prov["path"]).name)
        h, w = photo.shape[:2]
        kp = np.asarray(prov["keypoints"], np.float32)
        assert kp.shape == (prov["people"], 17, 3) and prov["people"] >= 1
        seen = kp[kp[..., 2] > 0]
        assert ((seen[:, 0] >= 0) & (seen[:, 0] < w) & (seen[:, 1] >= 0) & (seen[:, 1] < h)).all()
        # The skeleton is the shared renderer's drawing of exactly these keypoints, in the photo's geometry.
        record = make_record(
            prov["record_id"], "mmpose", photo, {"pose": annotation("keypoints", kp, score_threshold=0.0)}
        )
        expected = render_record(record).annotations["pose"]
        got = decode_png(row["image"])
        assert got.shape == (256, 256, 3) and np.array_equal(got, expected)
        assert got.any()  # something was drawn
        assert prov["pair"][1] == row["image_id"] and prov["pair"][0] in by_id

    [sentence] = sentences  # 4 pairs < 8: one pooled sentence
    assert sentence["source"] == "ann/pose" and sentence["kind"] == "annotated"
    ids = sentence["image_ids"]
    assert len(ids) == 2 * len(PEOPLE)
    for image_id, skeleton_id in zip(ids[0::2], ids[1::2]):
        assert json.loads(by_id[image_id]["provenance"])["role"] == "image"
        assert json.loads(by_id[skeleton_id]["provenance"])["pair"] == [image_id, skeleton_id]
