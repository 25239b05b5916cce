"""Failure rows are comparable across runners: no per-process detail such as object addresses."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from uvd.schema import failure_row


def _pil_error() -> str:
    try:
        Image.open(io.BytesIO(b"not an image"))
    except UnidentifiedImageError as exc:
        return str(exc)
    raise AssertionError("PIL decoded garbage")


def test_the_same_bad_input_gives_the_same_row_in_every_process():
    first, second = _pil_error(), _pil_error()
    assert " at 0x" in first  # PIL names the buffer object by its address
    rows = [failure_row("file:x.md", "laion", "laion", "not_an_image", d) for d in (first, second)]
    assert rows[0] == rows[1]
    assert rows[0]["detail"] == "cannot identify image file <_io.BytesIO object>"
