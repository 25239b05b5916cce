import numpy as np
import pytest

from uvd.transforms.synthetic import add_noise, black_boxes, low_light, record_rng, to_gray


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)


def test_gray_weights():
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 100, 100]]], np.uint8)
    assert to_gray(img)[0, :, 0].tolist() == [76, 150, 29, 100]
    assert (to_gray(img)[..., 0] == to_gray(img)[..., 2]).all()


def test_seeded_per_record(image):
    a = add_noise(image, record_rng(0, "rec1", "denoise"))
    b = add_noise(image, record_rng(0, "rec1", "denoise"))
    c = add_noise(image, record_rng(0, "rec2", "denoise"))
    assert (a == b).all() and not (a == c).all()


def test_black_boxes_square_and_patches(image):
    sq = black_boxes(image, record_rng(1, "r", "inpaint"))
    hole = (sq != image).any(axis=2)
    ys, xs = np.nonzero(hole)
    side_y, side_x = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert 16 <= side_y <= 32 and abs(side_y - side_x) <= 1
    assert (sq[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] == 0).all()
    pt = black_boxes(image, record_rng(1, "r", "inpaint"), mode="patches")
    zero = (pt == 0).all(axis=2)
    assert zero.any()
    cells = zero[:64, :96].reshape(2, 32, 3, 32).all(axis=(1, 3)) | ~zero[:64, :96].reshape(2, 32, 3, 32).any(
        axis=(1, 3)
    )
    assert cells.all()  # whole 32 px cells, never partial


def test_low_light_is_darker_within_the_formula(image):
    dark = low_light(image, record_rng(2, "r", "ll"))
    assert (dark.astype(int) <= image.astype(int) + 1).all()
    assert dark.mean() < image.mean() * 0.6
    white = np.full((2, 2, 3), 255, np.uint8)
    v = low_light(white, record_rng(2, "r", "ll"))[0, 0, 0]
    assert 0.5 * 0.9**5 * 255 - 1 <= v <= 255 * 1.0


def test_noise_sigma_in_range(image):
    flat = np.full((128, 128, 3), 128, np.uint8)
    sigmas = [np.std(add_noise(flat, record_rng(s, "r", "n")).astype(float) - 128) for s in range(20)]
    assert max(sigmas) <= 52 and min(sigmas) >= 0
    assert np.ptp(sigmas) > 10  # sigma really varies per record
