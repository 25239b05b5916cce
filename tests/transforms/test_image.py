"""uvd.transforms.image: decode/orient/convert/guard/resize+crop on real and crafted images."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uvd.transforms import image as I

SAMPLE = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "images"


def _jpeg(arr: np.ndarray, quality: int = 95, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, **save)
    return buf.getvalue()


def _png(im: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **save)
    return buf.getvalue()


def _quadrants(h: int = 64, w: int = 96) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: orientation is visible."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, : w // 2] = (255, 0, 0)
    arr[: h // 2, w // 2 :] = (0, 255, 0)
    arr[h // 2 :, : w // 2] = (0, 0, 255)
    arr[h // 2 :, w // 2 :] = (255, 255, 255)
    return arr


def _color_at(pixels: np.ndarray, fy: float, fx: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    return pixels[int(fy * h), int(fx * w)].astype(int)


def _close(a, b, tol: int = 40) -> bool:
    return bool(np.all(np.abs(np.asarray(a, int) - np.asarray(b, int)) <= tol))


# --- decode and conversion ----------------------------------------------------------------------
def test_real_photo_decodes_to_rgb_uint8():
    data = (SAMPLE / "astronaut.jpg").read_bytes()
    d = I.decode_image(data)
    assert d.pixels.dtype == np.uint8 and d.pixels.shape == (512, 512, 3)
    assert (d.height, d.width, d.format, d.scale) == (512, 512, "JPEG", 1)
    assert d.pixels.std() > 20  # a photo, not a flat fill


def test_gray_jpeg_becomes_three_equal_channels():
    d = I.decode_image((SAMPLE / "cameraman.jpg").read_bytes())
    assert d.pixels.shape == (512, 512, 3)
    assert np.array_equal(d.pixels[..., 0], d.pixels[..., 1]) and np.array_equal(d.pixels[..., 1], d.pixels[..., 2])


@pytest.mark.parametrize(
    "orientation, expect_hw, top_left",
    [
        (1, (64, 96), (255, 0, 0)),  # as stored
        (3, (64, 96), (255, 255, 255)),  # rotated 180: white quadrant comes to the top left
        (6, (96, 64), (0, 0, 255)),  # stored rotated: viewer turns it 90 deg clockwise
        (8, (96, 64), (0, 255, 0)),  # 90 deg counter-clockwise
        (2, (64, 96), (0, 255, 0)),  # mirrored
    ],
)
def test_exif_orientation_is_applied(orientation, expect_hw, top_left):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(_quadrants(), exif=exif.tobytes())
    d = I.decode_image(data)
    assert d.pixels.shape[:2] == expect_hw
    assert (d.height, d.width) == expect_hw
    assert _close(_color_at(d.pixels, 0.1, 0.1), top_left)


def test_cmyk_jpeg_colors_survive():
    rgb = _quadrants()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    d = I.decode_image(buf.getvalue())
    assert d.pixels.shape == (64, 96, 3)
    for fy, fx, color in [
        (0.1, 0.1, (255, 0, 0)),
        (0.1, 0.9, (0, 255, 0)),
        (0.9, 0.1, (0, 0, 255)),
        (0.9, 0.9, (255, 255, 255)),
    ]:
        assert _close(_color_at(d.pixels, fy, fx), color), (fy, fx)


def test_palette_png_with_transparency_composites_on_white():
    im = Image.new("P", (8, 8), 0)
    im.putpalette([200, 0, 0] + [0, 0, 200] + [0] * (256 * 3 - 6))
    im.paste(1, (0, 0, 4, 8))  # left half index 1 (blue), right half index 0 (red, made transparent)
    data = _png(im, transparency=0)
    px = I.decode_image(data).pixels
    assert px[0, 0].tolist() == [0, 0, 200]
    assert px[0, 7].tolist() == [255, 255, 255]


def test_palette_png_without_transparency_keeps_colors():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([10, 20, 30] + [0] * 765)
    assert I.decode_image(_png(im)).pixels[2, 2].tolist() == [10, 20, 30]


def test_rgba_alpha_composited_on_white():
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255  # red
    arr[:, :2, 3] = 255  # opaque left
    arr[:, 2:, 3] = 0  # transparent right
    arr[0, 0, 3] = 128  # half transparent
    px = I.decode_image(_png(Image.fromarray(arr, "RGBA"))).pixels
    assert px[1, 0].tolist() == [255, 0, 0]
    assert px[1, 3].tolist() == [255, 255, 255]
    assert px[0, 0].tolist() == [255, 127, 127]


def test_gray_alpha_composited_on_white():
    arr = np.zeros((2, 2, 2), np.uint8)
    arr[..., 1] = [[255, 0], [255, 0]]
    px = I.decode_image(_png(Image.fromarray(arr, "LA"))).pixels
    assert px[0, 0].tolist() == [0, 0, 0] and px[0, 1].tolist() == [255, 255, 255]


def test_16bit_gray_png_keeps_the_high_byte():
    arr = np.array([[0, 65535], [32768, 1000]], np.uint16)
    im = Image.fromarray(arr)  # mode I;16
    px = I.decode_image(_png(im)).pixels
    assert px[..., 0].tolist() == [[0, 255], [128, 3]]
    assert px.dtype == np.uint8 and px.shape == (2, 2, 3)
    dark = I.decode_image(_png(Image.fromarray(np.full((2, 2), 200, np.uint16)))).pixels
    assert dark.max() == 0  # 200/65535 is nearly black, not 200/255


def test_not_an_image():
    with pytest.raises(I.ImageError) as e:
        I.decode_image(b"<html><body>404 not found</body></html>")
    assert e.value.reason == "not_an_image"
    with pytest.raises(I.ImageError) as e:
        I.decode_image(b"")
    assert e.value.reason == "not_an_image"


def test_truncated_jpeg():
    data = (SAMPLE / "coffee.jpg").read_bytes()
    with pytest.raises(I.ImageError) as e:
        I.decode_image(data[: len(data) // 2])
    assert e.value.reason == "truncated"


def _png_header_only(width: int, height: int) -> bytes:
    """A few hundred bytes claiming width x height pixels: the decompression bomb shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_rejected_before_decoding():
    data = _png_header_only(100_000, 100_000)
    assert len(data) < 1000
    with pytest.raises(I.ImageError) as e:
        I.decode_image(data)
    assert e.value.reason == "decompression_bomb"
    # Our own limit (from config) applies below PIL's.
    with pytest.raises(I.ImageError) as e:
        I.decode_image(_png_header_only(3000, 3000), max_pixels=1_000_000)
    assert e.value.reason == "decompression_bomb"


def test_large_jpeg_decodes_at_reduced_scale_and_matches_full_decode():
    big = np.asarray(Image.open(SAMPLE / "rocket.jpg").convert("RGB").resize((2048, 1366), Image.BICUBIC))
    data = _jpeg(big, quality=90)
    fast = I.decode_image(data, min_size=256)
    assert fast.scale == 4 and min(fast.pixels.shape[:2]) >= 256
    assert (fast.height, fast.width) == (1366, 2048)
    full = I.decode_image(data)
    geom = I.compute_geometry(full.height, full.width, 256, "crop")
    a = I.apply_geometry(fast.pixels, geom).astype(int)
    b = I.apply_geometry(full.pixels, geom).astype(int)
    assert a.shape == b.shape == (256, 256, 3)
    assert np.abs(a - b).mean() < 4.0


def test_mpo_from_a_phone_camera_also_decodes_at_reduced_scale():
    frame = Image.fromarray(_quadrants(1200, 1600))
    buf = io.BytesIO()
    frame.save(buf, "MPO", save_all=True, append_images=[frame], quality=90)
    d = I.decode_image(buf.getvalue(), min_size=256)
    assert d.format == "MPO" and d.scale == 4 and (d.height, d.width) == (1200, 1600)
    assert _close(_color_at(d.pixels, 0.1, 0.9), (0, 255, 0))


def test_png_round_trip_is_lossless_and_deterministic():
    px = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    data = I.encode_png(px)
    assert data == I.encode_png(px)
    assert np.array_equal(I.decode_png(data), px)


# --- geometry -----------------------------------------------------------------------------------
def test_crop_geometry_centres_the_square():
    g = I.compute_geometry(300, 500, 256, "crop")
    assert (g.top, g.left, g.box_h, g.box_w, g.out_h, g.out_w) == (0, 100, 300, 300, 256, 256)
    g = I.compute_geometry(501, 200, 256, "crop")
    assert (g.top, g.left, g.box_h, g.box_w) == (150, 0, 200, 200)


def test_squash_geometry_keeps_everything():
    g = I.compute_geometry(300, 500, 256, "squash")
    assert (g.top, g.left, g.box_h, g.box_w) == (0, 0, 300, 500)
    with pytest.raises(ValueError):
        I.compute_geometry(300, 500, 256, "pad")


def test_resize_crop_keeps_the_centre_and_drops_the_sides():
    arr = np.zeros((100, 300, 3), np.uint8)
    arr[:, :100] = 255  # left third: cropped away
    arr[:, 100:200] = (0, 128, 0)  # centre: kept
    out = I.resize_crop(arr, 64, "crop")
    assert out.shape == (64, 64, 3)
    assert np.all(out == (0, 128, 0))
    squashed = I.resize_crop(arr, 64, "squash")
    assert squashed[:, :10].min() == 255 and squashed.shape == (64, 64, 3)


def test_label_map_nearest_keeps_only_existing_ids_and_aligns_with_image():
    h, w = 90, 150
    labels = np.zeros((h, w), np.uint8)
    labels[:, 75:] = 7
    labels[40:50, 60:90] = 3
    image = np.stack([labels * 30] * 3, axis=-1).astype(np.uint8)
    g = I.compute_geometry(h, w, 32, "crop")
    lab = I.apply_geometry(labels, g, nearest=True)
    img = I.apply_geometry(image, g, nearest=True)
    assert lab.shape == (32, 32) and set(np.unique(lab)) <= {0, 3, 7}
    assert np.array_equal(img[..., 0], lab * 30)  # same crop, same sampling
    ids64 = I.apply_geometry(labels.astype(np.int64) + 10**10, g, nearest=True)
    assert ids64.dtype == np.int64 and np.array_equal(ids64 - 10**10, lab)


def test_apply_geometry_on_a_half_scale_array_matches_full_scale():
    rng = np.random.default_rng(1)
    full = np.kron(rng.integers(0, 5, (40, 60)), np.ones((4, 4), np.int64)).astype(np.uint8)  # 160x240
    half = full[::2, ::2]
    g = I.compute_geometry(160, 240, 40, "crop")
    assert np.array_equal(I.apply_geometry(full, g, nearest=True), I.apply_geometry(half, g, nearest=True))


def test_map_points_and_boxes_follow_the_crop():
    g = I.compute_geometry(200, 400, 100, "crop")  # box x in [100, 300), scale 0.5
    pts = g.map_points(np.array([[100.0, 0.0], [300.0, 200.0], [200.0, 100.0]]))
    assert np.allclose(pts, [[0, 0], [100, 100], [50, 50]])
    boxes = g.map_boxes(np.array([[0, 0, 150, 50], [120, 20, 180, 60]]))
    assert np.allclose(boxes, [[0, 0, 25, 25], [10, 10, 40, 30]])


def test_to_square_rgb_on_every_sample_photo():
    photos = sorted(SAMPLE.glob("*.jpg"))
    assert len(photos) >= 20
    ids = set()
    for path in photos:
        px, decoded = I.to_square_rgb(path.read_bytes(), 256, "crop")
        assert px.shape == (256, 256, 3) and px.dtype == np.uint8
        assert max(decoded.height, decoded.width) <= 640
        ids.add(px.tobytes()[:4096])
    assert len(ids) == len(photos)
