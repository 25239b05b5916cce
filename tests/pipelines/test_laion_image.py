"""The LAION image path: cv2's JPEG decode gives PIL's pixels; images table encodings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from uvd.config import ConfigError, from_dict
from uvd.sources.laion import pipeline as laion
from uvd.transforms import image
from uvd.transforms.image import ImageError, decode_png, encode_image, encode_png, psnr_db, to_square_rgb


def _photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w, 1), y * 255 // max(h, 1), (x + y) % 256], -1).astype(np.float32)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _exif(o: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


CASES = [
    ("420", _jpeg(_photo(900, 600), quality=85)),
    ("444 progressive", _jpeg(_photo(700, 1100, 1), quality=95, subsampling=0, progressive=True)),
    ("gray", _jpeg(_photo(640, 480, 2)[..., 0], quality=80)),
    ("small, no reduction", _jpeg(_photo(300, 200, 3))),
    ("1/8", _jpeg(_photo(2100, 2050, 4), quality=75)),
] + [(f"exif {o}", _jpeg(_photo(520, 300, o), exif=_exif(o))) for o in range(1, 9)]


@pytest.mark.parametrize("name, data", CASES, ids=[c[0] for c in CASES])
def test_cv2_jpeg_path_gives_the_same_pixels_as_pil(monkeypatch, name, data):
    with Image.open(io.BytesIO(data)) as im:
        assert image._decode_jpeg_cv2(data, im, *im.size, 256) is not None  # the fast path is taken
    fast_px, fast = to_square_rgb(data, 256)
    monkeypatch.setattr(image, "_decode_jpeg_cv2", lambda *a: None)
    pil_px, pil = to_square_rgb(data, 256)
    assert np.array_equal(fast_px, pil_px)
    assert (fast.height, fast.width, fast.scale, fast.format) == (pil.height, pil.width, pil.scale, pil.format)


def test_a_truncated_jpeg_is_still_reported_truncated():
    data = CASES[0][1]
    with pytest.raises(ImageError) as e:
        to_square_rgb(data[: len(data) // 2])
    assert e.value.reason == "truncated"  # cv2 would pad it with gray: the EOI check sends it to PIL


def test_images_table_encodings_round_trip():
    px = to_square_rgb(CASES[1][1])[0]
    png = encode_image(px, "png")
    assert np.array_equal(decode_png(png), px) and np.array_equal(decode_png(encode_png(px)), px)
    jpg = encode_image(px, "jpeg", 95)
    assert jpg[:2] == b"\xff\xd8" and len(jpg) < len(png) / 2
    assert 30.0 < psnr_db(px, decode_png(jpg)) < 60.0  # noisy synthetic worst case; photos ~44 dB
    assert psnr_db(px, decode_png(encode_image(px, "jpeg", 50))) < psnr_db(px, decode_png(jpg))
    with pytest.raises(ValueError):
        encode_image(px, "webp")


def test_new_options_are_checked_before_work():
    for bad, field in [
        ({"image_format": "webp"}, "image_format"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"allowed_networks": ["10.0.0.0/33"]}, "allowed_networks"),
        ({"max_per_host": 0}, "max_per_host"),
    ]:
        with pytest.raises(ConfigError, match=field):
            from_dict(laion.Config, {"input": "x.parquet", **bad})
    cfg = from_dict(laion.Config, {"input": "x.parquet", "allowed_networks": ["10.1.0.0/16"], "honour_noindex": True})
    assert cfg.download().allowed_networks == ("10.1.0.0/16",) and cfg.download().honour_noindex
    assert cfg.render().image_format == "jpeg" and cfg.download().allow_private_addresses is False
