"""Fixtures for the viewer: a tiny hand-made dataset folder (unit tests) and the embedded sample built
once per session (browser tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uvd import schema

ROOT = Path(__file__).resolve().parents[2]


def cheap_decoder(ids: np.ndarray) -> np.ndarray:
    """Codes -> grey 256x256 images (each code a 16x16 block): the viewer's logic without a VQGAN."""
    grey = (ids.astype(np.int64) % 256).astype(np.uint8).reshape(len(ids), schema.GRID, schema.GRID)
    big = grey.repeat(schema.DOWNSAMPLE, axis=1).repeat(schema.DOWNSAMPLE, axis=2)
    return np.stack([big] * 3, axis=-1)


def _shard(path: Path, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=schema.SHARD_SCHEMA)
    pq.write_table(table, path)


def _sentence(i: int, source: str, n: int, rng: np.random.Generator) -> dict:
    return {
        "sentence_id": f"{source.replace('/', '_')}-{i:04d}",
        "source": source,
        "kind": "single" if n == 1 else "sequence",
        "num_images": n,
        "tokens": rng.integers(0, schema.CODEBOOK_SIZE, n * schema.TOKENS_PER_IMAGE).astype(np.uint16).tolist(),
    }


def make_tiny_dataset(root: Path, with_stats: bool = True, with_failures: bool = True) -> dict:
    """A dataset folder as `uvd dataset` leaves it, small enough to reason about by hand:
    train: a x 3 (1, 2, 16 images), b/x x 2 (4 images); validation: a x 1 (1 image)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    train = [
        _sentence(0, "a", 1, rng),
        _sentence(1, "a", 2, rng),
        _sentence(2, "a", 16, rng),
        _sentence(3, "b/x", 4, rng),
        _sentence(4, "b/x", 4, rng),
    ]
    val = [_sentence(5, "a", 1, rng)]
    _shard(root / "train-00000-of-00001.parquet", train)
    _shard(root / "validation-00000-of-00001.parquet", val)
    inputs = root.parent / f"{root.name}-inputs"
    (inputs / "photos").mkdir(parents=True, exist_ok=True)
    from PIL import Image

    photo = inputs / "photos" / "cat.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(photo)
    (inputs / "photos" / "notes.txt").write_text("not an image")
    manifest = inputs / "manifest.yaml"
    manifest.write_text("sources:\n  web: {stage: laion, input: photos/meta.parquet, weight: 1}\n")
    failures = [
        schema.failure_row(f"https://example.invalid/{i}.jpg", "laion", "laion", "http_404", "404") for i in range(3)
    ] + [
        schema.failure_row(
            str(photo), "imagenet_class", "imagenet_class", "class_too_small", "6 images", status="skipped"
        ),
        schema.failure_row("file:cat.png#wm", "laion", "laion", "filtered_pwatermark", "0.9", status="filtered"),
        schema.failure_row("file:notes.txt", "laion", "laion", "not_an_image", "text"),
        schema.failure_row("file:gone.jpg", "laion", "laion", "file_not_found", ""),
    ]
    if with_failures:
        (root / "failures").mkdir(exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(failures, schema=schema.FAILURES_SCHEMA),
            root / "failures" / "part-00000-of-00001.parquet",
        )
    if with_stats:
        by_source = [
            {"source": "a", "split": "train", "sentences": 3, "images": 19, "tokens": 19 * 256},
            {"source": "a", "split": "validation", "sentences": 1, "images": 1, "tokens": 256},
            {"source": "b/x", "split": "train", "sentences": 2, "images": 8, "tokens": 8 * 256},
        ]
        (root / "stats").mkdir(exist_ok=True)
        (root / "stats" / "dataset.json").write_text(
            json.dumps(
                {
                    "name": "tiny",
                    "totals": {"by_source": by_source, "by_split": {}},
                    "provenance": {"manifest": str(manifest)},
                    "tokenizer_checkpoint": None,
                }
            )
        )
        counts: dict[tuple, int] = {}
        for f in failures:
            key = (f["stage"], f["source"], f["status"], f["reason"])
            counts[key] = counts.get(key, 0) + 1
        (root / "stats" / "failures.json").write_text(
            json.dumps([dict(zip(("stage", "source", "status", "reason"), k), count=v) for k, v in counts.items()])
        )
    (root / "README.md").write_text(
        "---\nconfigs: []\n---\n\n# tiny\n\nSome `code` here.\n\n## Splits\n\n"
        "| split | sentences |\n|---|---|\n| train | 5 |\n| validation | 1 |\n"
    )
    return {"root": root, "photo": photo, "inputs": inputs, "train": train, "validation": val, "failures": failures}


@pytest.fixture
def tiny(tmp_path: Path) -> dict:
    return make_tiny_dataset(tmp_path / "ds")


@pytest.fixture(scope="session")
def sample_viewer(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What `make dataset` writes, viewer included: `uvd dataset` on the embedded sample manifest, once per
    session (~1 min on 2 cores: the build, then ~190 images decoded for the viewer). $UVD_SAMPLE_DATASET
    names a folder already built that way, to reuse."""
    reuse = os.environ.get("UVD_SAMPLE_DATASET")
    if reuse and (Path(reuse) / "viewer" / "index.html").exists():
        out = Path(reuse)
    else:
        from uvd.assembly import dataset

        out = tmp_path_factory.mktemp("sample") / "dataset"
        assert dataset.run(["--manifest", str(ROOT / "manifests" / "sample.yaml"), "--output", str(out)]) == 0
    summary = json.loads((out / "stats" / "dataset.json").read_text())
    return {"out": out, "summary": summary, "site": out / "viewer"}
