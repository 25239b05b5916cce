import numpy as np
import pytest

from uvd.transforms.segmentation import (
    ADE20K_PALETTE,
    IGNORE_INDEX,
    INSTANCE_PALETTE,
    ade20k_png_to_labels,
    render_instance_ids,
    render_segmentation,
)


def test_palette_is_mmseg_ade20k_150():
    assert ADE20K_PALETTE.shape == (150, 3)
    assert ADE20K_PALETTE[0].tolist() == [120, 120, 120]  # wall
    assert ADE20K_PALETTE[2].tolist() == [6, 230, 230]  # sky
    assert ADE20K_PALETTE[12].tolist() == [150, 5, 61]  # person
    assert ADE20K_PALETTE[149].tolist() == [92, 0, 255]  # flag
    assert len({tuple(c) for c in ADE20K_PALETTE}) >= 148  # (two grays repeat in mmseg's list)


def test_classes_get_palette_colours_and_ignore_is_black():
    labels = np.array([[0, 12], [IGNORE_INDEX, 149]])
    rgb = render_segmentation(labels)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [120, 120, 120]
    assert rgb[0, 1].tolist() == [150, 5, 61]
    assert rgb[1, 0].tolist() == [0, 0, 0]
    assert rgb[1, 1].tolist() == [92, 0, 255]


def test_ade20k_png_zero_is_ignore_and_classes_shift_down():
    png = np.array([[0, 1, 150]], np.uint8)
    labels = ade20k_png_to_labels(png)
    assert labels.tolist() == [[IGNORE_INDEX, 0, 149]]
    assert render_segmentation(labels)[0, 0].tolist() == [0, 0, 0]


def test_instance_ids_zero_black_then_palette_order():
    rgb = render_instance_ids(np.array([[0, 1, 2]], np.int32))
    assert rgb[0].tolist() == [[0, 0, 0], INSTANCE_PALETTE[0].tolist(), INSTANCE_PALETTE[1].tolist()]
    assert INSTANCE_PALETTE[0].tolist() == [255, 0, 0] and (INSTANCE_PALETTE.max(axis=1) == 255).all()


def test_rejects_float_labels():
    with pytest.raises(ValueError):
        render_segmentation(np.zeros((2, 2), np.float32))
