"""Pictures for the viewer, written once: one JPEG strip per shown sentence, one thumbnail per failed input.

VQGAN decoding is the slow part on CPU (~0.1-0.3 s an image), so a strip is named by a hash of what
it shows (the tokens, the image count, the thumbnail size and the checkpoint): a rebuilt viewer
decodes only sentences it has not drawn before, and opening a page never decodes anything.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable

import numpy as np
from apache_beam.io.filesystems import FileSystems

from uvd import schema
from uvd.transforms.image import thumbnail

log = logging.getLogger("uvd")
Decoder = Callable[[np.ndarray], np.ndarray]  # uint16 ids (N, 256) -> uint8 images (N, 256, 256, 3)
GAP = 3


def vqgan_decoder(checkpoint: str) -> Decoder:
    """The dataset's own VQGAN (loaded on first use, so a viewer with every strip cached loads no torch)."""
    model = None

    def decode_ids(ids: np.ndarray) -> np.ndarray:
        nonlocal model
        from uvd.tokenize import decode, load_vqgan

        if model is None:
            model = load_vqgan(checkpoint)
        return decode(model, ids)

    return decode_ids


def strip_name(tokens: np.ndarray, n: int, thumb: int, checkpoint: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(tokens[: n * schema.TOKENS_PER_IMAGE], dtype=np.uint16).tobytes())
    h.update(f"|{n}|{thumb}|{checkpoint}".encode())
    return h.hexdigest() + ".jpg"


def strip(images: np.ndarray, thumb: int, gap: int = GAP) -> np.ndarray:
    """Images NHWC -> one row of `thumb`-pixel thumbnails on white, `gap` pixels apart."""
    n = len(images)
    out = np.full((thumb, n * thumb + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        x = i * (thumb + gap)
        out[:, x : x + thumb] = thumbnail(np.asarray(image, dtype=np.uint8), thumb)
    return out


def _jpeg(pixels: np.ndarray, quality: int = 88) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path) as f:
        f.write(data)


def write_strips(
    sentences: list[dict],
    folder: str,
    decoder: Decoder,
    checkpoint: str,
    max_images: int,
    thumb: int,
    batch_images: int = 16,
) -> tuple[dict[str, str], int]:
    """Each sentence's first `max_images` images -> `<folder>/<hash>.jpg`, skipping strips already there.
    Images of several sentences go through the decoder together (about `batch_images` a call: a CPU
    decodes a batch of 8 in half the time of 8 single images). Returns sentence_id -> file name, and
    how many sentences had to be decoded."""
    names: dict[str, str] = {}
    pending: list[tuple[str, np.ndarray]] = []  # (strip path, ids (n, 256))
    decoded = 0

    def flush() -> None:
        if not pending:
            return
        images = decoder(np.concatenate([ids for _, ids in pending]))
        at = 0
        for path, ids in pending:
            _write(path, _jpeg(strip(images[at : at + len(ids)], thumb)))
            at += len(ids)
        pending.clear()

    for row in sentences:
        n = min(int(row["num_images"]), max_images)
        ids = np.asarray(row["tokens"], dtype=np.uint16)[: n * schema.TOKENS_PER_IMAGE]
        n = min(n, len(ids) // schema.TOKENS_PER_IMAGE)  # a short (malformed) row: show what there is
        if n == 0:
            continue
        name = strip_name(ids, n, thumb, checkpoint)
        names[row["sentence_id"]] = name
        path = FileSystems.join(folder, name)
        if FileSystems.exists(path):
            continue
        if pending and sum(len(i) for _, i in pending) + n > batch_images:
            flush()
        pending.append((path, ids[: n * schema.TOKENS_PER_IMAGE].reshape(n, schema.TOKENS_PER_IMAGE)))
        decoded += 1
    flush()
    return names, decoded


def input_thumbnail(path: str, folder: str, size: int = 160) -> str | None:
    """A failed record's input image -> `<folder>/<hash>.jpg` (longest side `size`), or None when it is not
    a readable image (many failures are exactly that). The copy keeps the viewer whole off this machine."""
    from PIL import Image

    name = hashlib.blake2b(path.encode(), digest_size=12).hexdigest() + ".jpg"
    out = FileSystems.join(folder, name)
    if FileSystems.exists(out):
        return name
    try:
        with Image.open(path) as src:
            if src.width * src.height > 64_000_000:  # a decompression bomb is a failure, not a thumbnail
                return None
            src.draft("RGB", (size, size))
            small = src.convert("RGB")
            small.thumbnail((size, size))
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=85)
    except Exception as exc:  # noqa: BLE001 - unreadable inputs are why many rows failed
        log.debug("no thumbnail for %s: %s", path, exc)
        return None
    _write(out, buf.getvalue())
    return name
