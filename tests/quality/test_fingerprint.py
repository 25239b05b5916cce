"""DCT hash and thumbnails: exact maths, invariances it promises, and distances that separate."""

from __future__ import annotations

import numpy as np
import pytest

from uvd.quality import fingerprint as F
from uvd.quality import testset


@pytest.fixture(scope="module")
def photos():
    return np.stack(testset.sample_photos(6))


def test_dct_matrix_is_orthonormal_and_matches_a_direct_sum():
    d = F.dct_matrix(32)
    assert np.allclose(d @ d.T, np.eye(32), atol=1e-5)
    x = np.random.default_rng(0).random(32).astype(np.float32)
    k = 3
    direct = np.sqrt(2 / 32) * sum(x[i] * np.cos(np.pi * (2 * i + 1) * k / 64) for i in range(32))
    assert np.isclose((d @ x)[k], direct, atol=1e-5)


def test_zigzag_skips_dc_and_orders_by_frequency():
    rows, cols = F.zigzag(32, 9)
    assert (0, 0) not in set(zip(rows.tolist(), cols.tolist()))
    assert (rows + cols).tolist() == sorted((rows + cols).tolist()) and (rows + cols).max() == 3


def test_hash_shape_and_balance(photos):
    h = F.dct_hash(photos, 128)
    assert h.shape == (6, 16) and h.dtype == np.uint8
    ones = np.unpackbits(h, axis=1).sum(axis=1)
    assert np.all(ones == 64)  # above/below the median: exactly half the bits set


def test_brightness_and_contrast_leave_the_hash_alone(photos):
    img = photos[0]
    shifted = np.clip(img.astype(np.int16) * 0.8 + 20, 0, 255).astype(np.uint8)
    assert F.hamming(F.dct_hash(img, 128)[0], F.dct_hash(shifted, 128)[0]) <= 4


def test_edits_stay_close_and_distinct_images_stay_far(photos):
    h = F.dct_hash(photos, 128)
    for name in ("jpeg50", "resize96", "wm_corner", "warm", "crop2"):
        edited = F.dct_hash(np.stack([testset.EDITS[name](p) for p in photos]), 128)
        close = F.hamming(h, edited) <= 32
        assert close.all() or (name == "crop2" and close.sum() >= 5), (name, F.hamming(h, edited))  # crops: weakest
    d = F.hamming(h[:, None], h[None, :])
    assert d[np.triu_indices(6, 1)].min() > 32


def test_hamming_matches_unpacked_bits():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (5, 8), dtype=np.uint8), rng.integers(0, 256, (5, 8), dtype=np.uint8)
    expect = (np.unpackbits(a, axis=1) != np.unpackbits(b, axis=1)).sum(axis=1)
    assert F.hamming(a, b).tolist() == expect.tolist()
    assert F.from_hex(F.to_hex(a[0])).tolist() == a[0].tolist()


def test_thumbnail_is_the_block_mean_of_luma():
    img = np.zeros((256, 256, 3), np.uint8)
    img[:128] = 200
    t = F.thumbnail(img)
    assert t.shape == (1, 16, 16) and t[0, :8].min() == 200 and t[0, 8:].max() == 0


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError):
        F.dct_hash(np.zeros((250, 250, 3), np.uint8))
    with pytest.raises(ValueError):
        F.dct_hash(np.zeros((256, 256, 3), np.uint8), bits=12)
