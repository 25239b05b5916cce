"""File access shared by the adapters: any Beam filesystem (local, gs://, s3://), label-exact decoding.

Photos decode through uvd.transforms.image (EXIF orientation, RGB, bomb guard). Annotation files
decode with their stored values intact: a palette PNG gives its indices (not the colours), a
16-bit PNG stays uint16, a .npy gives its array.
"""

from __future__ import annotations

import glob as globlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from uvd.config import ConfigError
from uvd.schema import RecordError
from uvd.transforms.image import Decoded, ImageError, decode_image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def join(root: str, path: str) -> str:
    """`path` under `root` unless it is already absolute or a URL."""
    if not root or "://" in path or os.path.isabs(path):
        return path
    return FileSystems.join(root, path)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_bytes(path: str) -> bytes:
    try:
        with FileSystems.open(path) as f:
            return f.read()
    except OSError as exc:  # Beam wraps missing files in BeamIOError (an IOError)
        raise RecordError("missing_file", f"{path}: {exc}"[:300]) from None


def read_image(path: str, min_size: int | None = None) -> Decoded:
    """A photo -> Decoded (upright RGB); failures become RecordError with the image's reason key."""
    try:
        return decode_image(read_bytes(path), min_size=min_size)
    except ImageError as exc:
        raise RecordError(exc.reason, f"{path}: {exc.detail}") from None


def read_array(path: str) -> np.ndarray:
    """An annotation file -> its stored values: .npy array, or PNG/TIFF pixels without conversion."""
    data = read_bytes(path)
    if path.lower().endswith(".npy"):
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise RecordError("bad_annotation_file", f"{path}: {exc}") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("RGBA", "LA"):
                im = im.convert(im.mode[:-1])
            return np.asarray(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise RecordError("bad_annotation_file", f"{path}: {exc}"[:300]) from None


def list_files(folder: str, exts: Iterable[str] | None = None) -> list[str]:
    """Files directly or recursively under `folder` (sorted), optionally by extension."""
    pattern = FileSystems.join(folder, "**")
    found = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
    if exts is not None:
        wanted = tuple(e.lower() for e in exts)
        found = [p for p in found if p.lower().endswith(wanted)]
    return sorted(found)


def relative(path: str, folder: str) -> str:
    """`path` relative to `folder`, '/'-separated (stable across filesystems)."""
    rel = path[len(folder) :] if path.startswith(folder) else os.path.basename(path)
    return rel.lstrip("/\\").replace("\\", "/")


def stem(path: str, folder: str) -> str:
    """Relative path without extension: what pairs an image with its annotation files."""
    return os.path.splitext(relative(path, folder))[0]


def check_input_exists(path: str, field: str = "input") -> None:
    """A local input that matches nothing is a ConfigError before any work (a job over nothing would
    write empty tables and exit 0). Remote URLs (gs://, s3://) are checked by the stage's reader."""
    if not path or "://" in path:
        return
    local = os.path.expanduser(path)
    if any(ch in local for ch in "*?["):
        if not globlib.glob(local, recursive=True):
            raise ConfigError(f"{field}: {path!r} matches no file; check the path or the glob")
    elif not os.path.exists(local):
        raise ConfigError(f"{field}: {path!r} does not exist; give an existing file or folder")


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """`write(stream)` into a temporary name beside `path`, then rename: readers never see a partial
    file, and a failure leaves nothing behind. Any Beam filesystem (local, gs://, s3://)."""
    directory, name = path.rsplit("/", 1) if "/" in path else (".", path)
    tmp = FileSystems.join(directory, f".tmp-{name}-{uuid.uuid4().hex}")
    try:
        with FileSystems.create(tmp) as stream:
            write(stream)
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.rename([tmp], [path])
    except BaseException:
        if FileSystems.exists(tmp):
            FileSystems.delete([tmp])
        raise


def write_json(path: str, obj: Any) -> None:
    """Small JSON file through Beam filesystems (stats, summaries), written atomically."""
    data = json.dumps(obj, indent=1, sort_keys=True).encode()
    atomic_write(path, lambda f: f.write(data))


def read_json(path: str) -> Any:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode())


def write_table_atomic(path: str, table: pa.Table) -> None:
    """A small Parquet table (zstd) through a temporary name, then rename (any Beam filesystem)."""
    atomic_write(path, lambda stream: pq.write_table(table, stream, compression="zstd"))
