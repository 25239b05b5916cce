"""End-to-end images/s of the LAION stage (`uvd laion`) downloading from a loopback HTTP server.

Serves ROWS distinct URLs (the sample photos upscaled to 1600 px JPEGs) from 127.0.0.1, runs the
whole Beam stage (read Parquet -> fetch -> decode -> resize -> PNG -> write tables) on the local
default runner, and compares with the naive loop measured in the same run: one thread,
requests.get, PIL full decode, bicubic resize + crop, PNG encode. The comparison with the tool
users would actually pick (img2dataset) is benchmarks/bench_peers.py (`make bench-peers`).

    .venv/bin/python benchmarks/bench_laion.py [beam flags, e.g. --direct_running_mode=in_memory]
"""

from __future__ import annotations

import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.http_server import Reply, ScriptedServer  # noqa: E402
from uvd.sources.laion import pipeline as laion  # noqa: E402

ROWS = 240


def photos(long_side: int = 1600) -> list[bytes]:
    out = []
    for path in sorted((ROOT / "uvd" / "sample" / "images").glob("*.jpg")):
        im = Image.open(path).convert("RGB")
        if min(im.size) < 128:
            continue
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def naive(urls: list[str]) -> int:
    ok = 0
    for url in urls:
        im = Image.open(io.BytesIO(requests.get(url, timeout=10).content)).convert("RGB")
        scale = 256 / min(im.size)
        im = im.resize((max(256, round(im.width * scale)), max(256, round(im.height * scale))), Image.BICUBIC)
        left, top = (im.width - 256) // 2, (im.height - 256) // 2
        buf = io.BytesIO()
        im.crop((left, top, left + 256, top + 256)).save(buf, "PNG")
        ok += 1
    return ok


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)  # keep Beam's INFO lines out of `make bench`
    bodies = photos()
    server = ScriptedServer().start()
    try:
        urls = [
            server.add(f"/img/{i}.jpg", Reply(200, bodies[i % len(bodies)], {"Content-Type": "image/jpeg"}))
            for i in range(ROWS)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            meta = Path(tmp) / "meta.parquet"
            pq.write_table(pa.table({"URL": urls}), meta, row_group_size=40)
            start = time.perf_counter()
            laion.run(
                ["--input", str(meta), "--output", str(Path(tmp) / "out"), "--allow_private_addresses", "true", *argv]
            )
            stage_s = time.perf_counter() - start
            images = pq.read_table(Path(tmp) / "out" / "sentences").num_rows
        sample = urls[: ROWS // 4]
        start = time.perf_counter()
        done = naive(sample)
        naive_rate = done / (time.perf_counter() - start)
    finally:
        server.stop()
    rate = images / stage_s
    print(
        f"laion: {rate:.1f} img/s end to end ({images} images in {stage_s:.1f} s incl. Beam start-up) vs "
        f"baseline {naive_rate:.1f} img/s (one thread: requests + PIL full decode + resize + PNG) -> "
        f"{rate / naive_rate:.2f}x"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
