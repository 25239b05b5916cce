"""Build laion_sample.parquet: LAION-style metadata for the embedded sample photos, plus rows that
must fail or be filtered, so a run with no network shows every outcome in its failures table.

    .venv/bin/python uvd/sample/laion/make_sample.py      # rewrites laion_sample.parquet (deterministic)

URLs are `file:` paths relative to this folder (resolved at run time against the Parquet's folder),
so the sample works from any checkout. Columns and types follow the LAION-5B releases: URL, TEXT,
WIDTH, HEIGHT (int64, may be null), similarity, punsafe, pwatermark (float64), hash (int64).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "images"
OUTPUT = HERE / "laion_sample.parquet"

CAPTIONS = {
    "astronaut": "portrait of an astronaut in an orange flight suit",
    "brick": "old brick wall texture",
    "cameraman": "a photographer with a camera on a tripod in a park",
    "cell": "phase image of a single cell",
    "chelsea_cat": "a tabby cat looking to the side",
    "china": "a chinese temple among trees",
    "coffee": "a cup of coffee on a saucer",
    "coins": "ancient greek coins on a gray background",
    "flower": "a pink flower close up",
    "grace_hopper": "portrait of a naval officer in uniform",
    "grass": "grass close up",
    "gravel": "gravel texture",
    "hubble_deep_field": "hubble deep field galaxies",
    "ihc": "microscopy of stained tissue",
    "luispedro": "a man smiling at the camera",
    "microaneurysms": "detail of a retina photo",
    "moon": "surface of the moon",
    "nuclear": "fluorescent cell nuclei",
    "page": "a scanned printed page",
    "retina": "fundus photograph of an eye",
    "rocket": "a rocket launching at night",
    "street_text": "text on a street sign",
}


def _hash(url: str) -> int:
    """A stable int64 per URL, like LAION's `hash` column (theirs hashes URL + caption)."""
    return int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "little", signed=True)


def _score(name: str, salt: str, low: float, high: float) -> float:
    u = int.from_bytes(hashlib.blake2b(f"{salt}/{name}".encode(), digest_size=4).digest(), "little") / 2**32
    return round(low + (high - low) * u, 4)


def rows() -> list[dict]:
    out = []
    for path in sorted(IMAGES.glob("*.jpg")):
        name = path.stem
        with Image.open(path) as im:
            width, height = im.size
        out.append(
            {
                "URL": f"file:../images/{path.name}",
                "TEXT": CAPTIONS.get(name, name.replace("_", " ")),
                "WIDTH": width,
                "HEIGHT": height,
                "similarity": _score(name, "sim", 0.28, 0.40),
                "punsafe": _score(name, "nsfw", 0.0, 0.12),
                "pwatermark": _score(name, "wm", 0.0, 0.3),
            }
        )
    # Metadata is often missing: this row has no size, so only the decoded size is checked.
    for row in out:
        if row["URL"].endswith("/coffee.jpg"):
            row["WIDTH"] = row["HEIGHT"] = None
    bad = [
        # (URL, TEXT, WIDTH, HEIGHT, punsafe, pwatermark): why it ends in the failures table
        ("file:./../images/chelsea_cat.jpg", "the same cat under another URL (content dedup)", 451, 300, 0.01, 0.02),
        ("file:../images/missing_photo.jpg", "a file that is not there", 640, 480, 0.01, 0.01),  # file_not_found
        (
            "file:../images/flower.jpg#nsfw",
            "flagged unsafe by LAION's classifier",
            640,
            427,
            0.93,
            0.05,
        ),  # filtered_punsafe
        ("file:../images/china.jpg#wm", "flagged watermarked", 640, 427, 0.02, 0.97),  # filtered_pwatermark
        ("file:../images/panorama_not_shipped.jpg", "a very wide panorama", 2400, 500, 0.01, 0.01),  # filtered_aspect
        ("file:../images/SOURCES.md", "a text file, not an image", None, None, 0.01, 0.01),  # not_an_image
        ("file:broken/truncated.jpg", "a JPEG cut in half", 600, 400, 0.01, 0.01),  # truncated
        ("ftp://example.com/photo.jpg", "a scheme we do not fetch", 800, 600, 0.01, 0.01),  # bad_scheme
        (None, "a row without a URL", 800, 600, 0.01, 0.01),  # missing_url
    ]
    for url, text, width, height, punsafe, pwatermark in bad:
        out.append(
            {
                "URL": url,
                "TEXT": text,
                "WIDTH": width,
                "HEIGHT": height,
                "similarity": 0.3,
                "punsafe": punsafe,
                "pwatermark": pwatermark,
            }
        )
    for row in out:
        row["hash"] = _hash(row["URL"] or "")
    return out


SCHEMA = pa.schema(
    [
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("WIDTH", pa.int64()),
        ("HEIGHT", pa.int64()),
        ("similarity", pa.float64()),
        ("hash", pa.int64()),
        ("punsafe", pa.float64()),
        ("pwatermark", pa.float64()),
    ]
)


def main() -> None:
    broken = HERE / "broken"
    broken.mkdir(exist_ok=True)
    coffee = (IMAGES / "coffee.jpg").read_bytes()
    (broken / "truncated.jpg").write_bytes(coffee[: len(coffee) // 2])
    table = pa.Table.from_pylist(rows(), schema=SCHEMA)
    # Small row groups so Beam's Parquet source splits even this sample across workers.
    pq.write_table(table, OUTPUT, row_group_size=8, compression="zstd")
    print(f"wrote {OUTPUT} ({table.num_rows} rows)")


if __name__ == "__main__":
    main()
