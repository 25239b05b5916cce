"""Expert handlers without Beam: tiny checkpoints load by path through the hub-id code, batches of
mixed sizes give the same outputs as one image at a time, degenerate outputs become skips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from uvd.sources.label import checks, tiny
from uvd.sources.label.depth import DepthHandler
from uvd.sources.label.edges import CannyHandler, LearnedEdgesHandler
from uvd.sources.label.handler import Degenerate, ExpertHandler, nearest_resize, new_item
from uvd.sources.label.hf import Preprocess, read_preprocess
from uvd.sources.label.normals import NormalsHandler
from uvd.sources.label.segmentation import SegmentationHandler
from uvd.transforms.image import decode_image

IMAGES = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "images"


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Three real photos of different sizes (decoded smaller than their files, as the stage does)."""
    names = ["chelsea_cat.jpg", "astronaut.jpg", "street_text.jpg"]
    return [decode_image((IMAGES / n).read_bytes(), min_size=128).pixels for n in names]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("experts")
    return {
        "dpt": tiny.save_tiny_dpt(str(root / "dpt")),
        "dpt_zero": tiny.save_tiny_dpt(str(root / "dpt_zero"), zero_head=True),
        "segformer": tiny.save_tiny_segformer(str(root / "segformer")),
        "segformer_zero": tiny.save_tiny_segformer(str(root / "segformer_zero"), zero_head=True),
        "normals": tiny.save_tiny_torchscript(str(root / "normals.pt"), 3),
        "normals_zero": tiny.save_tiny_torchscript(str(root / "normals_zero.pt"), 3, zero_head=True),
        "edges": tiny.save_tiny_torchscript(str(root / "edges.pt"), 1),
    }


def _label(handler: ExpertHandler, images: list[np.ndarray], batched: bool = True) -> list[dict]:
    model = handler.load_model()
    items = [new_item(f"img{i}", im) for i, im in enumerate(images)]
    if batched:
        return list(handler.run_inference(items, model))
    return [out for item in items for out in handler.run_inference([item], model)]


def test_processor_config_is_read_from_the_checkpoint(models):
    pre = read_preprocess(models["dpt"], Preprocess((384, 384), (0, 0, 0), (1, 1, 1)))
    assert pre == Preprocess(size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resample="bicubic")
    seg = read_preprocess(models["segformer"], Preprocess((1, 1), (0, 0, 0), (1, 1, 1)))
    assert seg.size == (64, 64) and seg.mean == pytest.approx((0.485, 0.456, 0.406)) and seg.resample == "bilinear"


def test_depth_batched_equals_per_image_at_each_image_size(models, photos):
    handler = DepthHandler(models["dpt"], device="cpu")
    batched, single = _label(handler, photos), _label(handler, photos, batched=False)
    for item, one, image in zip(batched, single, photos):
        ann = item["annotations"]["depth"]
        assert ann["type"] == "depth" and ann["inverse"] is False  # DPT predicts disparity
        assert ann["data"].shape == image.shape[:2] and ann["data"].dtype == np.float32
        assert ann["data"].min() >= 0 and np.ptp(ann["data"]) > 0
        np.testing.assert_allclose(ann["data"], one["annotations"]["depth"]["data"], rtol=1e-4, atol=1e-6)
        assert item["provenance"]["experts"]["depth"] == models["dpt"]


def test_segmentation_gives_ade20k_ids_at_image_size(models, photos):
    items = _label(SegmentationHandler(models["segformer"], device="cpu", max_batch_size=4), photos)
    for item, image in zip(items, photos):
        labels = item["annotations"]["segmentation"]["data"]
        assert labels.shape == image.shape[:2] and labels.dtype == np.int32
        assert 0 <= labels.min() and labels.max() < 150 and len(np.unique(labels)) > 1


def test_mask2former_checkpoints_load_as_universal_segmenters(tmp_path, photos):
    handler = SegmentationHandler(tiny.save_tiny_mask2former(str(tmp_path / "m2f")), device="cpu")
    model = handler.load_model()
    assert model.config.model_type == "mask2former"
    items = list(handler.run_inference([new_item(str(i), im) for i, im in enumerate(photos[:2])], model))
    for item, image in zip(items, photos):
        labels = item["annotations"]["segmentation"]["data"] if "segmentation" in item["annotations"] else None
        reason = item["skipped"].get("segmentation", [None])[0]
        assert labels is not None or reason == "single_class"  # random queries mostly agree everywhere
        if labels is not None:
            assert labels.shape == image.shape[:2] and 0 <= labels.min() and labels.max() < 150


def test_mask2former_class_scores_weight_query_masks_by_class_probabilities():
    from types import SimpleNamespace

    import torch

    from uvd.sources.label.segmentation import class_scores

    classes = torch.full((1, 2, 11), -10.0)  # 2 queries, 10 classes + "no object"
    classes[0, 0, 5] = classes[0, 1, 7] = 10.0
    masks = torch.full((1, 2, 4, 6), -10.0)
    masks[0, 0, :, :3] = masks[0, 1, :, 3:] = 10.0  # query 0 left half, query 1 right half
    scores = class_scores(SimpleNamespace(logits=None, class_queries_logits=classes, masks_queries_logits=masks))
    assert scores.shape == (1, 10, 4, 6)
    labels = scores.argmax(dim=1)[0].numpy()
    assert (labels[:, :3] == 5).all() and (labels[:, 3:] == 7).all()


def test_normals_and_learned_edges_from_torchscript(models, photos):
    for item, image in zip(_label(NormalsHandler(models["normals"], device="cpu"), photos), photos):
        n = item["annotations"]["normals"]["data"]
        assert n.shape == (*image.shape[:2], 3) and np.isfinite(n).all()
    for item, image in zip(
        _label(LearnedEdgesHandler(models["edges"], device="cpu", edges_output="logits"), photos), photos
    ):
        e = item["annotations"]["edges"]["data"]
        assert e.shape == image.shape[:2] and 0.0 <= e.min() and e.max() <= 1.0


def test_unit_range_normals_are_decoded_to_vectors(models, photos):
    signed = _label(NormalsHandler(models["normals"], device="cpu"), photos[:1])[0]["annotations"]["normals"]["data"]
    unit = _label(NormalsHandler(models["normals"], device="cpu", normals_range="unit"), photos[:1])
    np.testing.assert_allclose(unit[0]["annotations"]["normals"]["data"], signed * 2 - 1, atol=1e-5)


def test_degenerate_outputs_are_skipped_with_a_reason(models, photos):
    cases = [
        (DepthHandler(models["dpt_zero"], device="cpu"), "constant_depth"),
        (SegmentationHandler(models["segformer_zero"], device="cpu"), "single_class"),
        (NormalsHandler(models["normals_zero"], device="cpu"), "constant_normals"),
    ]
    for handler, reason in cases:
        for item in _label(handler, photos[:2]):
            assert handler.task not in item["annotations"]
            assert item["skipped"][handler.task][0] == reason
    flat = np.full((120, 90, 3), 128, np.uint8)
    items = _label(CannyHandler(), [flat, photos[0]])
    assert items[0]["skipped"]["edges"][0] == "empty_edges"
    assert items[1]["annotations"]["edges"] == {"type": "edges", "data": None}  # renderer runs Canny


def test_a_failing_image_fails_alone_and_errored_items_pass_through():
    class Picky(ExpertHandler):
        task = "depth"

        def load_model(self):
            return None

        def predict(self, model, images):
            if any(im.shape[0] == 7 for im in images):
                raise RuntimeError("bad image")
            return [np.linspace(1, 2, im.shape[0] * im.shape[1]).reshape(im.shape[:2]) for im in images]

        def to_annotation(self, output, image):
            checks.check_depth(output)
            return {"type": "depth", "data": output}

    good, bad = np.zeros((10, 10, 3), np.uint8), np.zeros((7, 10, 3), np.uint8)
    earlier = new_item("gone", good)
    earlier["error"] = ["not_an_image", ""]
    out = Picky().run_inference([new_item("a", good), new_item("b", bad), earlier], None)
    assert [o["record_id"] for o in out] == ["a", "b", "gone"]
    assert "depth" in out[0]["annotations"] and out[0]["error"] is None
    assert out[1]["error"][0] == "depth_exception_RuntimeError" and not out[1]["annotations"]
    assert out[2]["error"] == ["not_an_image", ""] and not out[2]["annotations"]


def test_checks():
    ramp = np.linspace(1, 5, 100).reshape(10, 10)
    checks.check_depth(ramp)
    with pytest.raises(Degenerate, match="constant_depth"):
        checks.check_depth(np.full((10, 10), 3.0))
    with pytest.raises(Degenerate, match="too_little_depth"):
        checks.check_depth(np.where(ramp > 2, 0.0, ramp))
    checks.check_depth(np.where(ramp > 2, 0.0, ramp), disparity=True)  # zero disparity = far, valid
    labels = np.zeros((100, 100), np.int32)
    labels[0, :50] = 3
    with pytest.raises(Degenerate, match="single_class"):
        checks.check_segmentation(labels)  # 99.5% one class
    labels[:10] = 3
    checks.check_segmentation(labels)
    n = np.zeros((8, 8, 3))
    n[..., 2] = 1
    with pytest.raises(Degenerate, match="constant_normals"):
        checks.check_normals(n)
    n[:4, :, 0] = 1
    checks.check_normals(n)
    with pytest.raises(Degenerate, match="empty_edges"):
        checks.check_edges(np.zeros((256, 256, 3), np.uint8))
    line = np.zeros((256, 256), np.uint8)
    line[128] = 255
    checks.check_edges(line)


def test_nearest_resize_keeps_labels_and_centres():
    labels = np.array([[1, 2], [3, 4]], np.int32)
    np.testing.assert_array_equal(nearest_resize(labels, 4, 2), [[1, 2], [1, 2], [3, 4], [3, 4]])
    big = nearest_resize(np.arange(12, dtype=np.int32).reshape(3, 4), 7, 9)
    assert big.shape == (7, 9) and big.dtype == np.int32 and set(np.unique(big)) == set(range(12))


@pytest.mark.gpu
def test_bf16_on_cuda_agrees_with_fp32(models, photos):
    """On CUDA the experts run under bf16 autocast: labels stay close to the fp32 ones."""
    fp32 = _label(DepthHandler(models["dpt"], device="cuda", precision="fp32"), photos)
    bf16 = _label(DepthHandler(models["dpt"], device="cuda", precision="auto"), photos)
    for a, b in zip(fp32, bf16):
        da, db = a["annotations"]["depth"]["data"], b["annotations"]["depth"]["data"]
        assert db.dtype == np.float32 and np.corrcoef(da.ravel(), db.ravel())[0, 1] > 0.98
    seg32 = _label(SegmentationHandler(models["segformer"], device="cuda", precision="fp32"), photos)
    seg16 = _label(SegmentationHandler(models["segformer"], device="cuda"), photos)
    for a, b in zip(seg32, seg16):
        agree = (a["annotations"]["segmentation"]["data"] == b["annotations"]["segmentation"]["data"]).mean()
        assert agree > 0.9
