"""Image bytes -> 256x256 RGB pixels: decode, orient, convert, resize + crop, encode. Pure functions.

The path every source shares (LAION downloads, dataset folders, video frames' annotations):

    decoded = decode_image(data, min_size=256)            # uint8 HxWx3, EXIF-oriented, RGB
    geom = compute_geometry(h, w, size=256, mode="crop")  # the one resize/crop decision
    pixels = apply_geometry(decoded.pixels, geom)         # area when shrinking, bicubic when growing
    labels = apply_geometry(label_map, geom, nearest=True)  # same crop, nearest neighbour
    png = encode_png(pixels)

Why these choices:
- Large JPEGs decode at 1/2, 1/4 or 1/8 scale in the DCT (PIL `draft`), never below the size the
  final crop needs: most of the decode cost of a 2000 px photo goes away with no visible loss.
- Header dimensions are checked against `max_pixels` before any pixel is decoded (a 50 kB PNG can
  claim 100k x 100k pixels): a decompression bomb is a failure row, not an out-of-memory worker.
- Alpha is composited on white (what a viewer shows), CMYK/palette/16-bit/gray become 8-bit RGB.
- Every bad input raises ImageError with a short `reason` key the pipelines put in failure rows.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

# PIL's own bomb limit (89.5 Mpx); ours is checked first and explicitly, from config.
DEFAULT_MAX_PIXELS = 89_478_485

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
MODES = ("crop", "squash")

# EXIF Orientation (tag 0x0112) -> the PIL transposition that makes the image upright.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


class ImageError(ValueError):
    """An image that cannot become pixels. `reason` is the failure-row key (not_an_image...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Decoded:
    """Upright RGB pixels plus the size of the full-resolution upright image they came from.

    `pixels` may be smaller than (height, width) when the JPEG was decoded at reduced DCT scale.
    """

    pixels: np.ndarray  # uint8 (h, w, 3)
    height: int  # upright full-resolution height
    width: int
    format: str  # PIL format name: JPEG, PNG, WEBP...
    scale: int = 1  # DCT reduction used (1, 2, 4 or 8)


# --- decode -----------------------------------------------------------------------------------
def decode_image(data: bytes, min_size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode bytes to upright uint8 RGB.

    min_size: the decoded image keeps both sides >= min_size (when the image has them), so a JPEG
        may decode at 1/2..1/8 scale; None decodes at full resolution (use that for images whose
        annotations are pixel-aligned at full size, or use apply_geometry, which rescales).
    max_pixels: header width*height above this raises ImageError("decompression_bomb").
    """
    if not data:
        raise ImageError("not_an_image", "empty body")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageError("decompression_bomb", str(exc)) from None
        except Image.DecompressionBombWarning as exc:
            raise ImageError("decompression_bomb", str(exc)) from None
        except (UnidentifiedImageError, SyntaxError, ValueError, OSError) as exc:
            raise ImageError("not_an_image", str(exc)[:200]) from None
        with im:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageError("not_an_image", f"bad size {w}x{h}")
            if w * h > max_pixels:
                raise ImageError("decompression_bomb", f"{w}x{h} = {w * h} px > max_pixels {max_pixels}")
            fmt = im.format or "unknown"
            orientation = _orientation(im)
            fast = _decode_jpeg_cv2(data, im, w, h, min_size)
            if fast is not None:
                pixels, scale = fast
                pixels = _orient(pixels, orientation)
                if orientation in (5, 6, 7, 8):
                    h, w = w, h
                return Decoded(pixels=pixels, height=h, width=w, format=fmt, scale=scale)
            scale = 1
            if min_size:  # JPEG and MPO (phone cameras) decode at reduced DCT scale; others: no-op
                im.draft(im.mode, (min_size, min_size))
                scale = max(1, round(w / im.size[0]))
            try:
                im.load()
            except Image.DecompressionBombError as exc:
                raise ImageError("decompression_bomb", str(exc)) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                msg = str(exc)
                reason = "truncated" if "truncat" in msg.lower() or isinstance(exc, EOFError) else "corrupt_image"
                raise ImageError(reason, msg[:200]) from None
            for op in _TRANSPOSE.get(orientation, ()):
                im = im.transpose(op)
            pixels = to_rgb(im)
    if orientation in (5, 6, 7, 8):
        h, w = w, h
    return Decoded(pixels=pixels, height=h, width=w, format=fmt, scale=scale)


_CV2_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _decode_jpeg_cv2(
    data: bytes, im: Image.Image, w: int, h: int, min_size: int | None
) -> tuple[np.ndarray, int] | None:
    """A plain RGB or gray JPEG through cv2 (libjpeg-turbo, GIL released, reduced DCT): the same
    pixels as PIL's draft + load (tests/pipelines/test_laion_image.py) at the same CPU cost, but
    with the GIL released for the whole decode, so the stage's row threads use every core.

    The scale is PIL's draft rule (largest 1/2/4/8 keeping both sides >= min_size). None (use
    PIL) for other formats and modes (CMYK, YCCK), and for a body that does not end in an EOI
    marker: libjpeg would pad a truncated file with gray where PIL reports `truncated`.
    """
    if im.format != "JPEG" or im.mode not in ("RGB", "L") or not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        return None
    scale = 1
    if min_size:
        ratio = min(w // min_size, h // min_size)
        scale = next((s for s in (8, 4, 2) if ratio >= s), 1)
    flags = _CV2_REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None or bgr.shape[:2] != (-(-h // scale), -(-w // scale)):
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr), scale  # in place: no second full-size copy


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation on an array: the same pixels as PIL's transposes in _TRANSPOSE."""
    if orientation in (1, 0):
        return pixels
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](pixels))


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
        return 1


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 (h, w, 3). Alpha is composited on white; 16-bit keeps its top 8 bits."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        out = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        if mode == "F" or arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
            peak = 1.0 if np.nanmax(arr, initial=0.0) <= 1.0 else 255.0
            gray = np.clip(np.rint(np.nan_to_num(arr) / peak * 255.0), 0, 255).astype(np.uint8)
        else:
            # "I;16*" is 16-bit by definition; "I" (32-bit) holds 16-bit PNG data in older PIL
            # versions, or 8-bit values widened: only values above 255 say it is 16-bit.
            wide = mode.startswith("I;16") or arr.dtype.itemsize == 2
            arr = arr.astype(np.int64)
            shift = 8 if wide or arr.max(initial=0) > 255 else 0
            gray = np.clip(arr >> shift, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    # L, 1, CMYK (PIL undoes Adobe inversion), YCbCr, LAB, HSV...
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


# --- geometry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """Which source box becomes the output, in the source's pixel coordinates.

    crop: the centred square of side min(h, w); squash: the whole image. The box is resized to
    (out_h, out_w). Apply it to an image and to its annotations to keep them aligned; points and
    boxes map with `map_points` / `map_boxes`.
    """

    src_h: int
    src_w: int
    top: int
    left: int
    box_h: int
    box_w: int
    out_h: int
    out_w: int

    @property
    def scale_y(self) -> float:
        return self.out_h / self.box_h

    @property
    def scale_x(self) -> float:
        return self.out_w / self.box_w

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Source (x, y) pixel coordinates (..., 2) -> output coordinates (continuous, may fall outside)."""
        xy = np.asarray(xy, dtype=np.float64)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] - self.left) * self.scale_x
        out[..., 1] = (xy[..., 1] - self.top) * self.scale_y
        return out

    def map_boxes(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Source (x0, y0, x1, y1) boxes (N, 4) -> output boxes, clipped to the output by default."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        p0 = self.map_points(boxes[:, 0:2])
        p1 = self.map_points(boxes[:, 2:4])
        out = np.concatenate([p0, p1], axis=1)
        if clip:
            out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.out_w)
            out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.out_h)
        return out


def compute_geometry(h: int, w: int, size: int = 256, mode: str = "crop") -> Geometry:
    """The resize/crop of an (h, w) image to size x size: shorter side + centre crop, or squash."""
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if mode == "crop":
        side = min(h, w)
        return Geometry(h, w, (h - side) // 2, (w - side) // 2, side, side, size, size)
    if mode == "squash":
        return Geometry(h, w, 0, 0, h, w, size, size)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def apply_geometry(
    array: np.ndarray, geometry: Geometry, nearest: bool = False, interpolation: str | None = None
) -> np.ndarray:
    """Crop the geometry's box from `array` and resize it to the output size.

    `array` is (H, W) or (H, W, C) of any dtype cv2 resizes (uint8, uint16, int32 labels via
    nearest, float32). It may be a uniform rescale of the geometry's source (a JPEG decoded at 1/4
    scale, a half-resolution depth map): the box is mapped onto its grid.
    nearest=True is for label maps (class ids never blend). Otherwise `interpolation` names one
    of INTERPOLATIONS; default "area" when shrinking and "bicubic" when enlarging.
    """
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C), got shape {arr.shape}")
    h, w = arr.shape[:2]
    fy, fx = h / geometry.src_h, w / geometry.src_w
    top = int(round(geometry.top * fy))
    left = int(round(geometry.left * fx))
    box_h = max(1, min(h - top, int(round(geometry.box_h * fy))))
    box_w = max(1, min(w - left, int(round(geometry.box_w * fx))))
    box = arr[top : top + box_h, left : left + box_w]
    out_h, out_w = geometry.out_h, geometry.out_w
    if (box_h, box_w) == (out_h, out_w):
        return np.ascontiguousarray(box)
    if nearest:
        flag = INTERPOLATIONS["nearest"]
    elif interpolation is not None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
        flag = INTERPOLATIONS[interpolation]
    else:
        flag = cv2.INTER_AREA if box_h >= out_h and box_w >= out_w else cv2.INTER_CUBIC
    if nearest and box.dtype in (np.int64, np.uint32, np.int8, np.bool_):
        return _nearest_any_dtype(box, out_h, out_w)
    # cv2 takes a crop view whose rows are strided; only odd layouts need the copy
    rows_ok = box.strides[1] == box.itemsize * (box.shape[2] if box.ndim == 3 else 1)
    src = box if rows_ok and (box.ndim == 2 or box.strides[2] == box.itemsize) else np.ascontiguousarray(box)
    if src.dtype == np.float64:
        src = src.astype(np.float32)
    out = cv2.resize(src, (out_w, out_h), interpolation=flag)
    if out.ndim == 2 and arr.ndim == 3:  # cv2 drops a trailing channel axis of size 1
        out = out[..., None]
    return out.astype(arr.dtype, copy=False)


def _nearest_any_dtype(box: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Nearest neighbour by index arithmetic for dtypes cv2 cannot resize (int64 ids, bool masks)."""
    ys = np.minimum((np.arange(out_h) + 0.5) * box.shape[0] / out_h, box.shape[0] - 1).astype(np.int64)
    xs = np.minimum((np.arange(out_w) + 0.5) * box.shape[1] / out_w, box.shape[1] - 1).astype(np.int64)
    return np.ascontiguousarray(box[ys][:, xs])


def resize_crop(
    image: np.ndarray, size: int = 256, mode: str = "crop", interpolation: str | None = None, nearest: bool = False
) -> np.ndarray:
    """compute_geometry + apply_geometry in one call, for an array with no companion annotations."""
    geometry = compute_geometry(image.shape[0], image.shape[1], size, mode)
    return apply_geometry(image, geometry, nearest=nearest, interpolation=interpolation)


# --- encode -----------------------------------------------------------------------------------
def encode_png(pixels: np.ndarray, compression: int = 1) -> bytes:
    """uint8 RGB (h, w, 3) or gray (h, w) -> PNG bytes (lossless, deterministic).

    zlib level 1: on 256x256 photos ~30% faster than level 3 for ~6% more bytes; the images table
    is an intermediate, and encoding is the largest CPU cost of a source stage after decoding.
    """
    arr = np.ascontiguousarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_png expects uint8, got {arr.dtype}")
    bgr = arr[..., ::-1] if arr.ndim == 3 and arr.shape[2] == 3 else arr
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


IMAGE_FORMATS = ("png", "jpeg")
# Lossless PNG tuned for speed: the "up" filter with run-length deflate at level 1 encodes 256x256
# photos ~1.9x faster than zlib's default strategy (the largest CPU cost of the LAION stage after
# decoding) for ~7% more bytes; any PNG reader decodes it to the same pixels.
_FAST_PNG = [
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_UP,
]


def encode_image(pixels: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """uint8 RGB (h, w, 3) -> image bytes for the images table (deterministic).

    png: lossless, the speed-tuned settings above. jpeg: lossy, 4:2:0, `quality` (1..100): at 95
    about 4x smaller than PNG and ~10x cheaper to encode, at a PSNR measured in
    benchmarks/bench_peers.py --quality (docs/scaling.md); the tokenizer reads either.
    """
    arr = np.ascontiguousarray(pixels)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"encode_image expects uint8 (h, w, 3), got {arr.dtype} {arr.shape}")
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, _FAST_PNG)
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise ValueError(f"image format must be one of {IMAGE_FORMATS}, got {fmt!r}")
    if not ok:
        raise ValueError(f"{fmt} encoding failed")
    return buf.tobytes()


def psnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Peak signal-to-noise ratio of `other` against `reference` (uint8), in dB; inf when equal."""
    err = np.mean((np.asarray(reference, np.float64) - np.asarray(other, np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes from encode_png -> uint8 RGB (h, w, 3) (for tests, previews, the tokenizer)."""
    with Image.open(io.BytesIO(data)) as im:
        return to_rgb(im)


def to_square_rgb(
    data: bytes,
    size: int = 256,
    mode: str = "crop",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    interpolation: str | None = None,
) -> tuple[np.ndarray, Decoded]:
    """Bytes -> (size x size x 3 uint8, the Decoded it came from): the whole single-image path."""
    decoded = decode_image(data, min_size=size, max_pixels=max_pixels)
    geometry = compute_geometry(decoded.height, decoded.width, size, mode)
    return apply_geometry(decoded.pixels, geometry, interpolation=interpolation), decoded


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """Area-average downscale of a square uint8 image (exact when the factor is whole)."""
    h = image.shape[0]
    if h % size == 0:
        f = h // size
        return image.reshape(size, f, size, f, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
