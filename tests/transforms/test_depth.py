import numpy as np

from uvd.transforms.depth import depth_png_to_meters, render_depth


def test_inverse_depth_min_max_near_is_bright():
    depth = np.array([[1.0, 2.0, 4.0]])
    gray = render_depth(depth)
    # inverse depth 1, 0.5, 0.25 -> (x - 0.25) / 0.75 * 255
    assert gray[0, :, 0].tolist() == [255, 85, 0]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_invalid_pixels_are_zero_and_excluded_from_min_max():
    depth = np.array([[0.0, np.nan, 1.0, 2.0, 1000.0]])
    gray = render_depth(depth, invalid=np.array([[0, 0, 0, 0, 1]], bool))
    assert gray[0, :, 0].tolist() == [0, 0, 255, 0, 0]


def test_disparity_input_keeps_its_order():
    assert render_depth(np.array([[1.0, 3.0]]), inverse=False)[0, :, 0].tolist() == [0, 255]


def test_nyu_png_millimetres_to_metres():
    png = np.array([[0, 1000, 2500]], np.uint16)
    assert depth_png_to_meters(png).tolist() == [[0.0, 1.0, 2.5]]
