import numpy as np

from uvd.transforms.edges import render_edge_map, render_edges


def test_canny_white_edges_on_black_along_a_square():
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = 255
    edges = render_edges(img)
    assert set(np.unique(edges)) == {0, 255}
    e = edges[..., 0] > 0
    assert e[16:48, 14:18].any() and e[16:48, 46:50].any()  # left and right sides found
    assert not e[:10].any() and not e[24:40, 24:40].any()  # flat regions stay black


def test_given_edge_map_polarity_and_threshold():
    black_on_white = np.array([[255, 0, 255]], np.uint8)
    assert render_edge_map(black_on_white, invert=True)[0, :, 0].tolist() == [0, 255, 0]
    soft = np.array([[0.1, 0.6, 1.0]])
    assert render_edge_map(soft, threshold=0.5)[0, :, 0].tolist() == [0, 255, 255]
    assert render_edge_map(soft)[0, :, 0].tolist() == [26, 153, 255]
