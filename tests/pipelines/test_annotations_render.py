"""A record's image and annotations share one resize/crop; label maps never blend colours."""

import numpy as np
import pytest

from uvd.annotated.records import RecordError, annotation, make_record
from uvd.annotated.render import record_image_rows, render_record
from uvd.transforms.detection import BOX_PALETTE
from uvd.transforms.pose import JOINT_COLORS, LIMB_COLORS, LIMBS
from uvd.transforms.segmentation import ADE20K_PALETTE, IGNORE_INDEX


def _image(h=300, w=400):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_label_map_after_resize_has_only_palette_colours():
    rng = np.random.default_rng(1)
    labels = np.kron(rng.integers(0, 150, (30, 40)), np.ones((10, 10), np.int64)).astype(np.int32)  # 300x400 blocks
    labels[::7, ::3] = IGNORE_INDEX  # fine speckle that must not blend
    rec = make_record("r", "d", _image(), {"seg": annotation("segmentation", labels)})
    out = render_record(rec).annotations["seg"]
    assert out.shape == (256, 256, 3)
    allowed = {tuple(c) for c in ADE20K_PALETTE} | {(0, 0, 0)}
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert colours <= allowed
    assert len(colours) > 50


def test_segmentation_and_image_stay_aligned_under_centre_crop():
    h, w = 300, 400  # crop: columns 50..349, then x 256/300
    img = np.zeros((h, w, 3), np.uint8)
    img[90:210, 170:290] = 255  # a white square...
    labels = np.full((h, w), IGNORE_INDEX, np.int32)
    labels[90:210, 170:290] = 4  # ...and its label
    rec = make_record("r", "d", img, {"seg": annotation("segmentation", labels)})
    r = render_record(rec)
    white = r.image[..., 0] > 127
    labelled = (r.annotations["seg"] == ADE20K_PALETTE[4]).all(axis=2)
    assert (white != labelled).sum() <= 2 * 103  # at most a 1 px border disagreement
    ys, xs = np.nonzero(labelled)
    assert abs(xs.min() - (170 - 50) * 256 / 300) <= 1 and abs(ys.min() - 90 * 256 / 300) <= 1


def test_box_outline_colour_and_position_through_geometry():
    rec = make_record(
        "r",
        "d",
        _image(),
        {"det": annotation("boxes", {"boxes": [[150, 90, 260, 210]], "classes": [7]}, canvas="black")},
    )
    canvas = render_record(rec).annotations["det"]
    s = 256 / 300
    x0, y0, x1, y1 = round((150 - 50) * s), round(90 * s), round((260 - 50) * s), round(210 * s)
    colour = BOX_PALETTE[7].tolist()
    mid_y, mid_x = (y0 + y1) // 2, (x0 + x1) // 2
    assert canvas[y0, mid_x].tolist() == colour and canvas[y0 + 2, mid_x].tolist() == colour
    assert canvas[y0 + 3, mid_x].tolist() == [0, 0, 0] and canvas[y0 - 1, mid_x].tolist() == [0, 0, 0]
    assert canvas[mid_y, x0].tolist() == colour and canvas[mid_y, x1 - 1].tolist() == colour
    assert canvas[mid_y, mid_x].tolist() == [0, 0, 0]


def test_boxes_are_drawn_over_the_image_by_default():
    """The paper's detection target: colour-coded boxes overlaid on the photo, not on black."""
    rec = make_record(
        "r", "d", _image(), {"det": annotation("boxes", {"boxes": [[150, 90, 260, 210]], "classes": [7]})}
    )
    r = render_record(rec)
    canvas = r.annotations["det"]
    outline = (canvas == BOX_PALETTE[7]).all(axis=2) & (canvas != r.image).any(axis=2)
    assert outline.sum() > 300  # the outline is drawn...
    assert (canvas[~outline] == r.image[~outline]).all()  # ...and everything else is the image
    with pytest.raises(RecordError, match="canvas"):
        render_record(
            make_record(
                "r",
                "d",
                _image(),
                {"det": annotation("boxes", {"boxes": [[150, 90, 260, 210]], "classes": [7]}, canvas="white")},
            )
        )


def test_box_cut_by_the_crop_has_no_edge_at_the_border():
    rec = make_record(
        "r",
        "d",
        _image(),
        {"det": annotation("boxes", {"boxes": [[0, 100, 120, 200]], "classes": [0]}, canvas="black")},
    )
    canvas = render_record(rec).annotations["det"]
    assert not canvas[100:160, 0].any()  # left edge (x=0) is outside the crop
    assert canvas[round(100 * 256 / 300), 30].tolist() == BOX_PALETTE[0].tolist()


def test_skeleton_limb_endpoints_follow_the_geometry():
    kp = np.zeros((1, 17, 3))
    kp[0, 6] = [110, 150, 2]  # right shoulder
    kp[0, 8] = [230, 150, 2]  # right elbow
    rec = make_record("r", "d", _image(), {"pose": annotation("keypoints", kp)})
    canvas = render_record(rec).annotations["pose"]
    s = 256 / 300
    xa, xb, y = round((110 - 50) * s), round((230 - 50) * s), round(150 * s)
    assert canvas[y, xa].tolist() == JOINT_COLORS[2].tolist()
    assert canvas[y, xb].tolist() == JOINT_COLORS[3].tolist()
    assert canvas[y, (xa + xb) // 2].tolist() == LIMB_COLORS[LIMBS.index((2, 3))].tolist()


def test_depth_invalid_pixels_never_blend_into_valid_ones():
    d = np.full((300, 400), 2.0, np.float32)
    d[:, 200:] = 0.0  # invalid right half
    d[:150, :200] = 1.0  # nearer top-left
    rec = make_record("r", "d", _image(), {"depth": annotation("depth", d)})
    gray = render_record(rec).annotations["depth"][..., 0]
    right = round((200 - 50) * 256 / 300)
    assert (gray[:, right + 1 :] == 0).all()
    assert set(np.unique(gray[:120, : right - 2])) == {255}  # near = bright
    assert set(np.unique(gray[135:, : right - 2])) == {0}  # far = 0 after min-max


def test_reduced_decode_keeps_annotations_aligned():
    full = np.zeros((600, 800, 3), np.uint8)
    full[180:420, 340:580] = 255
    labels = np.full((600, 800), IGNORE_INDEX, np.int32)
    labels[180:420, 340:580] = 2
    half = full[::2, ::2]  # what a 1/2 DCT decode gives
    rec = make_record("r", "d", half, {"seg": annotation("segmentation", labels)}, full_size=(600, 800))
    r = render_record(rec)
    white, labelled = r.image[..., 0] > 127, (r.annotations["seg"] == ADE20K_PALETTE[2]).all(axis=2)
    assert (white != labelled).sum() <= 2 * 103


def test_synthetic_is_the_pair_input_and_seeded():
    rec = make_record(
        "r1",
        "d",
        _image(),
        {
            "colorization": annotation("synthetic", {"fn": "gray"}),
            "inpainting": annotation("synthetic", {"fn": "black_boxes"}),
            "edges": annotation("edges"),
        },
    )
    r1, r2 = render_record(rec, seed=3), render_record(rec, seed=3)
    assert (r1.annotations["inpainting"] == r2.annotations["inpainting"]).all()
    assert not (render_record(rec, seed=4).annotations["inpainting"] == r1.annotations["inpainting"]).all()
    rows, image_id, ids = record_image_rows(rec, r1, bucket=0)
    import json

    prov = {json.loads(r["provenance"]).get("task"): json.loads(r["provenance"]) for r in rows}
    assert prov["colorization"]["pair"] == [ids["colorization"], image_id]  # gray -> colour
    assert prov["edges"]["pair"] == [image_id, ids["edges"]]  # image -> edges
    assert len({r["image_id"] for r in rows}) == 4


def test_bad_records_raise_with_a_reason():
    with pytest.raises(RecordError) as e:
        make_record("r", "d", _image(), {"seg": annotation("segmentation", np.zeros((10, 10), np.int32))})
    assert e.value.reason == "annotation_size_mismatch"
    with pytest.raises(RecordError) as e:
        annotation("hologram", None)
    assert e.value.reason == "unknown_annotation_type"


def test_binary_edge_map_stays_binary_and_thin_lines_survive_downscaling():
    edges = np.zeros((600, 800), np.uint8)
    edges[300, :] = 255  # a 1 px line at full resolution
    rec = make_record("r", "d", _image(600, 800), {"edges": annotation("edges", edges)})
    out = render_record(rec).annotations["edges"][..., 0]
    assert set(np.unique(out)) == {0, 255}
    rows = np.nonzero(out[:, 128])[0]
    assert 1 <= len(rows) <= 2 and abs(rows[0] - 300 * 256 / 600) <= 1


def test_output_image_of_another_resolution_gets_the_same_crop():
    low = np.zeros((150, 200, 3), np.uint8)
    low[45:105, 85:145] = 255  # marker in the input
    high = np.zeros((300, 400, 3), np.uint8)
    high[90:210, 170:290] = 255  # the same marker at 2x (a super-resolution target)
    rec = make_record("r", "d", low, {"sr": annotation("image", high)})
    r = render_record(rec)
    a, b = r.image[..., 0] > 127, r.annotations["sr"][..., 0] > 127
    assert a.sum() > 1000 and (a != b).sum() <= 2 * 103


def test_squash_mode_maps_boxes_with_two_scales():
    rec = make_record(
        "r", "d", _image(), {"det": annotation("boxes", {"boxes": [[0, 0, 200, 150]], "classes": [2]}, canvas="black")}
    )
    canvas = render_record(rec, mode="squash").annotations["det"]
    colour = BOX_PALETTE[2].tolist()
    assert canvas[0, 60].tolist() == colour and canvas[127, 60].tolist() == colour  # y1 = 150 * 256/300 = 128
    assert canvas[60, 127].tolist() == colour and canvas[60, 128].tolist() == [0, 0, 0]  # x1 = 200 * 256/400 = 128


# --- empty targets are skipped rows, never training targets (issue 15) --------------------------------
_H, _W = 300, 400
_EMPTY = {
    "depth": (annotation("depth", np.zeros((_H, _W), np.float32)), "empty_depth"),
    "flat_depth": (annotation("depth", np.full((_H, _W), 2.0, np.float32)), "empty_depth"),
    "normals": (annotation("normals", np.zeros((_H, _W, 3), np.float32)), "empty_normals"),
    "segmentation": (annotation("segmentation", np.full((_H, _W), IGNORE_INDEX, np.int32)), "empty_segmentation"),
    "instances": (annotation("instances", np.zeros((_H, _W), np.int32)), "empty_instances"),
    "masks": (annotation("masks", {"objects": [[], [[1, 1, 5, 5]]], "classes": [1, 2]}), "empty_segmentation"),
    "edges": (annotation("edges", np.zeros((_H, _W), np.uint8)), "empty_edges"),
    "boxes": (annotation("boxes", {"boxes": [[0, 0, 40, 40]], "classes": [1]}), "empty_boxes"),  # cropped away
    "pose": (annotation("keypoints", np.zeros((1, 17, 3))), "empty_pose"),
}


@pytest.mark.parametrize("task", sorted(_EMPTY))
def test_a_target_without_information_is_skipped_and_the_other_tasks_stay(task):
    ann, reason = _EMPTY[task]
    labels = np.full((_H, _W), IGNORE_INDEX, np.int32)
    labels[100:200, 150:250] = 3
    rec = make_record("r", "d", _image(), {task: ann, "good": annotation("segmentation", labels)})
    r = render_record(rec)
    assert set(r.annotations) == {"good"} and r.skipped[task].reason == reason
    assert r.skipped[task].status == "skipped" and r.skipped[task].detail.startswith(f"{task}: ")
    rows, _, ann_ids = record_image_rows(rec, r, 0)
    assert set(ann_ids) == {"good"} and len(rows) == 2
