import numpy as np

from uvd.transforms.normals import normals_png_to_vectors, render_normals


def test_unit_axes_map_to_expected_rgb():
    n = np.array([[[0, 0, 1], [1, 0, 0], [0, -1, 0]]], np.float32)
    rgb = render_normals(n)
    assert rgb[0, 0].tolist() == [128, 128, 255]
    assert rgb[0, 1].tolist() == [255, 128, 128]
    assert rgb[0, 2].tolist() == [128, 0, 128]


def test_length_is_normalised_and_missing_normals_are_black():
    n = np.array([[[0, 0, 5], [0, 0, 0], [np.nan, 0, 1]]], np.float32)
    assert render_normals(n)[0].tolist() == [[128, 128, 255], [0, 0, 0], [0, 0, 0]]


def test_png_round_trip():
    png = np.array([[[128, 128, 255], [0, 0, 0]]], np.uint8)
    vec = normals_png_to_vectors(png)
    assert np.allclose(vec[0, 0], [0.0039, 0.0039, 1.0], atol=1e-3)
    assert (vec[0, 1] == 0).all()
    assert render_normals(vec)[0].tolist() == [[128, 128, 255], [0, 0, 0]]
